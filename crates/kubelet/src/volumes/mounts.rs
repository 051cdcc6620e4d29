//! The host's mount table and the two mount operations volumes need: a tmpfs on a volume
//! directory (`emptyDir.medium: Memory`, secret and projected volumes) and unmounting.
//! Uses the `mount`/`umount` programs, as upstream's mounter does.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::SetUpError;

/// Mount points listed in /proc/self/mounts, with the kernel's octal escapes decoded.
pub(crate) fn mount_points() -> io::Result<Vec<PathBuf>> {
    let table = fs::read_to_string("/proc/self/mounts")?;
    Ok(table
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .map(|p| PathBuf::from(unescape(p)))
        .collect())
}

/// `\040` → space and the like (/proc/mounts escapes space, tab, newline and backslash).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `dir` (canonical) is itself a mount point.
pub(crate) fn is_mount_point(dir: &Path) -> io::Result<bool> {
    Ok(mount_points()?.iter().any(|m| m == dir))
}

/// Mount points strictly below `dir` (canonical), deepest first.
pub(crate) fn mount_points_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut under: Vec<PathBuf> = mount_points()?
        .into_iter()
        .filter(|m| m != dir && m.starts_with(dir))
        .collect();
    under.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    under.dedup();
    Ok(under)
}

/// Mounts a tmpfs on `dir` unless one is there already (setup runs at every pod sync).
/// `size` in bytes bounds it, as `emptyDir.sizeLimit` does upstream.
pub(crate) async fn ensure_tmpfs(dir: &Path, size: Option<i64>) -> Result<(), SetUpError> {
    let canonical = dir.canonicalize().map_err(|error| SetUpError::Io {
        op: "stat",
        path: dir.to_path_buf(),
        error,
    })?;
    if is_mount_point(&canonical).map_err(|error| SetUpError::Io {
        op: "read",
        path: PathBuf::from("/proc/self/mounts"),
        error,
    })? {
        return Ok(());
    }
    let mut args = vec!["-t".to_string(), "tmpfs".to_string()];
    if let Some(bytes) = size.filter(|b| *b > 0) {
        args.push("-o".into());
        args.push(format!("size={bytes}"));
    }
    args.push("tmpfs".into());
    args.push(canonical.to_string_lossy().into_owned());
    run("mount", &args)
        .await
        .map_err(|(status, output)| SetUpError::Mount {
            status,
            args: args.join(" "),
            output,
        })
}

/// Unmounts `dir`; a path that is no longer mounted counts as done.
pub(crate) async fn unmount(dir: &Path) -> Result<(), String> {
    let path = dir.to_string_lossy().into_owned();
    match run("umount", std::slice::from_ref(&path)).await {
        Ok(()) => Ok(()),
        Err((status, output)) => match is_mount_point(dir) {
            Ok(false) => Ok(()),
            _ => Err(format!(
                "unmount failed: {status}\nUnmounting arguments: {path}\nOutput: {output}"
            )),
        },
    }
}

/// Runs `program args`; on failure the exit status and the combined output.
async fn run(program: &str, args: &[String]) -> Result<(), (String, String)> {
    match tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            Err((out.status.to_string(), text.trim_end().to_string()))
        }
        Err(e) => Err((format!("could not run {program}"), e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn proc_mounts_escapes_are_decoded() {
        assert_eq!(unescape("/var/lib/a\\040b"), "/var/lib/a b");
        assert_eq!(unescape("/x\\134y"), "/x\\y");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\04"), "/end\\04");
    }
}
