//! The image-reference parsing behind `imagePullPolicy`'s default.
//!
//! Upstream's `SetDefaults_Container` asks `parsers.ParseImageName` (docker's
//! `reference.ParseNormalizedNamed`) for the tag: `Always` when it is `latest` — which is also
//! what a reference with neither tag nor digest gets — and `IfNotPresent` otherwise, including
//! a digest-only reference and a reference that does not parse (the error is ignored there).

/// Upstream's default `imagePullPolicy` for a container running `image`.
pub(super) fn pull_policy(image: &str) -> &'static str {
    if tag(image) == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The tag `ParseImageName` returns: the explicit tag, `""` for a digest-only reference,
/// `"latest"` when there is neither; `None` when the reference is not valid.
fn tag(image: &str) -> Option<&str> {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if digest.is_some_and(|d| !valid_digest(d)) {
        return None;
    }
    // A ':' after the last '/' starts the tag; one before it belongs to a registry port.
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if tag.is_some_and(|t| !valid_tag(t)) || !valid_name(name) {
        return None;
    }
    match (tag, digest) {
        (Some(t), _) => Some(t),
        (None, Some(_)) => Some(""),
        (None, None) => Some("latest"),
    }
}

/// `[domain/]path-component[/path-component]*`, at most 255 characters. The first component
/// is a domain when it has a `.` or `:`, is `localhost`, or has upper-case letters (docker's
/// `splitDockerDomain`).
fn valid_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 || is_64_hex(name) {
        return false;
    }
    let path = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            if !valid_domain(first) {
                return false;
            }
            rest
        }
        _ => name,
    };
    path.split('/').all(valid_component)
}

/// Docker refuses a repository name that looks like an image ID.
fn is_64_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while bytes.get(i).is_some_and(|&b| alnum(b)) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        while bytes.get(i).is_some_and(|&b| !alnum(b)) {
            i += 1;
        }
        let sep = &c[sep_start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
}

/// `host[:port]`, the host a dotted name or a bracketed IPv6 address.
fn valid_domain(domain: &str) -> bool {
    let (host_ok, port) = if let Some(inner) = domain.strip_prefix('[') {
        let Some((addr, rest)) = inner.split_once(']') else {
            return false;
        };
        let ok = !addr.is_empty()
            && addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        match rest.strip_prefix(':') {
            Some(port) => (ok, Some(port)),
            None if rest.is_empty() => (ok, None),
            None => return false,
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (valid_host(host), Some(port)),
            None => (valid_host(domain), None),
        }
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Dot-separated labels of letters, digits and inner hyphens.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut bytes = tag.bytes();
    tag.len() <= 128
        && bytes.next().is_some_and(word)
        && bytes.all(|b| word(b) || b == b'.' || b == b'-')
}

/// `algorithm:hex` with an algorithm docker can verify and the hex length it produces.
fn valid_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::pull_policy;

    #[test]
    fn pull_policy_follows_the_tag() {
        let sha = "sha256:".to_string() + &"a".repeat(64);
        let cases = [
            ("busybox", "Always"),
            ("busybox:latest", "Always"),
            ("nginx:1.21", "IfNotPresent"),
            ("localhost/busybox:latest", "Always"),
            ("localhost:5000/busybox", "Always"),
            ("localhost:5000/busybox:1.0", "IfNotPresent"),
            ("registry.k8s.io/pause:3.9", "IfNotPresent"),
            ("[::1]:5000/app", "Always"),
            ("docker.io/library/nginx", "Always"),
            ("Registry.Example/app", "Always"),
            (&format!("nginx@{sha}"), "IfNotPresent"),
            (&format!("nginx:latest@{sha}"), "Always"),
            // References that do not parse: the error is ignored, so IfNotPresent.
            ("", "IfNotPresent"),
            ("Busybox", "IfNotPresent"),
            ("nginx@sha256:abc", "IfNotPresent"),
            ("nginx:", "IfNotPresent"),
            ("a//b", "IfNotPresent"),
            ("foo:bar:baz", "IfNotPresent"),
            (&"a".repeat(64), "IfNotPresent"),
        ];
        for (image, want) in cases {
            assert_eq!(pull_policy(image), want, "image {image:?}");
        }
    }
}
