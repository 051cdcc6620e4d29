//! The iptables state the proxy wants, and the runner that brings the kernel's tables to it
//! by rewriting only the chains that changed (one `iptables-restore --noflush` per sync).
//!
//! Every chain the proxy owns starts with [`PREFIX`]; built-in chains (PREROUTING, OUTPUT,
//! POSTROUTING, INPUT, FORWARD) get one jump rule each ([`Hook`]), inserted at the top so
//! that the CNI plugin's own rules cannot shadow them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The prefix of every chain rkube owns (`RKUBE-SERVICES`, `RKUBE-SVC-…`, …). Not `KUBE-`,
/// so a real kube-proxy on the same host keeps its own chains.
pub const PREFIX: &str = "RKUBE-";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("running {cmd}: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("{cmd} failed: {stderr}")]
    Failed { cmd: String, stderr: String },
}

/// The tables rkube touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableName {
    Nat,
    Filter,
}

impl TableName {
    pub fn as_str(self) -> &'static str {
        match self {
            TableName::Nat => "nat",
            TableName::Filter => "filter",
        }
    }
}

/// One table's owned chains: chain name → its rules, each the text after `-A CHAIN ` in
/// `iptables-restore` syntax (double quotes group words, as in `--comment "a b"`).
pub type Chains = BTreeMap<String, Vec<String>>;

/// A jump from a built-in chain into an owned one, kept first in that chain.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hook {
    pub table: TableName,
    /// The built-in chain, e.g. `PREROUTING`.
    pub chain: &'static str,
    /// The rule's arguments, e.g. `["-m", "comment", "--comment", "rkube service portals", "-j", "RKUBE-SERVICES"]`.
    pub rule: Vec<String>,
}

/// Everything the proxy wants installed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desired {
    pub tables: BTreeMap<TableName, Chains>,
    pub hooks: Vec<Hook>,
}

impl Desired {
    pub fn chains(&mut self, table: TableName) -> &mut Chains {
        self.tables.entry(table).or_default()
    }

    /// Adds `other`'s chains and hooks (chains of the same name: `other` wins).
    pub fn merge(&mut self, other: Desired) {
        for (table, chains) in other.tables {
            self.chains(table).extend(chains);
        }
        for hook in other.hooks {
            if !self.hooks.contains(&hook) {
                self.hooks.push(hook);
            }
        }
    }
}

/// What one sync did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Chains written (created or rewritten).
    pub written: usize,
    /// Chains deleted.
    pub deleted: usize,
    /// Rules in the restore input.
    pub rules: usize,
}

/// The restore input that turns `applied` into `desired` for one table, touching only the
/// chains that differ; `existing` are owned chains known to exist in the kernel that
/// `applied` does not describe (left over from an earlier run), deleted unless desired.
pub fn restore_input(
    table: TableName,
    applied: &Chains,
    desired: &Chains,
    existing: &BTreeSet<String>,
    stats: &mut SyncStats,
) -> Option<String> {
    // A chain found in the kernel but not in `applied` is rewritten: its content is unknown.
    let changed: Vec<&String> = desired
        .iter()
        .filter(|(name, rules)| applied.get(*name) != Some(rules) || existing.contains(*name))
        .map(|(name, _)| name)
        .collect();
    let stale: BTreeSet<&String> = applied
        .keys()
        .chain(existing.iter())
        .filter(|name| !desired.contains_key(*name))
        .collect();
    if changed.is_empty() && stale.is_empty() {
        return None;
    }
    let mut out = format!("*{}\n", table.as_str());
    for name in changed.iter().copied().chain(stale.iter().copied()) {
        let _ = writeln!(out, ":{name} - [0:0]");
    }
    for name in &changed {
        for rule in &desired[*name] {
            let _ = writeln!(out, "-A {name} {rule}");
            stats.rules += 1;
        }
    }
    for name in &stale {
        let _ = writeln!(out, "-X {name}");
    }
    out.push_str("COMMIT\n");
    stats.written += changed.len();
    stats.deleted += stale.len();
    Some(out)
}

/// Owned chains named in `iptables-save` output.
pub fn owned_chains(save: &str) -> BTreeSet<String> {
    save.lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| name.starts_with(PREFIX))
        .map(str::to_string)
        .collect()
}

/// Runs an iptables command, inside network namespace `netns` when given (`ip netns exec`).
async fn run(
    netns: Option<&str>,
    cmd: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, Error> {
    let describe = || format!("{cmd} {}", args.join(" "));
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, cmd]);
            c
        }
        None => Command::new(cmd),
    };
    let mut child = command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            cmd: describe(),
            source,
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(|source| Error::Spawn {
                cmd: describe(),
                source,
            })?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|source| Error::Spawn {
            cmd: describe(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::Failed {
            cmd: describe(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Applies [`Desired`] states to the kernel, remembering what it wrote so that the next
/// sync rewrites only what changed. After an error (or at first) it reads the kernel's
/// owned chains back and rewrites everything.
#[derive(Default)]
pub struct Runner {
    applied: Option<BTreeMap<TableName, Chains>>,
    hooks: Vec<Hook>,
    netns: Option<String>,
}

impl Runner {
    pub fn new() -> Runner {
        Runner::default()
    }

    /// A runner for the tables of network namespace `netns` (benchmarks, tests).
    pub fn in_netns(netns: &str) -> Runner {
        Runner {
            netns: Some(netns.to_string()),
            ..Runner::default()
        }
    }

    /// Forgets what was applied: the next sync reads the kernel back and rewrites every
    /// chain (what a restarted proxy does).
    pub fn reset(&mut self) {
        self.applied = None;
        self.hooks.clear();
    }

    /// Makes the kernel match `desired`.
    pub async fn sync(&mut self, desired: &Desired) -> Result<SyncStats, Error> {
        let result = self.try_sync(desired).await;
        if result.is_err() {
            // Unknown state: read it back next time.
            self.applied = None;
            self.hooks.clear();
        }
        result
    }

    async fn try_sync(&mut self, desired: &Desired) -> Result<SyncStats, Error> {
        let mut stats = SyncStats::default();
        let full = self.applied.is_none();
        let empty = Chains::new();
        let mut input = String::new();
        let tables: BTreeSet<TableName> = desired
            .tables
            .keys()
            .copied()
            .chain(self.applied.iter().flat_map(|a| a.keys().copied()))
            .collect();
        for table in tables {
            let existing = if full {
                owned_chains(
                    &run(
                        self.netns.as_deref(),
                        "iptables-save",
                        &["-t", table.as_str()],
                        None,
                    )
                    .await?,
                )
            } else {
                BTreeSet::new()
            };
            let applied = self
                .applied
                .as_ref()
                .and_then(|a| a.get(&table))
                .unwrap_or(&empty);
            let want = desired.tables.get(&table).unwrap_or(&empty);
            if let Some(text) = restore_input(table, applied, want, &existing, &mut stats) {
                input.push_str(&text);
            }
        }
        // Chains first (hooks jump into them), then the hooks.
        let netns = self.netns.as_deref();
        if !input.is_empty() {
            run(netns, "iptables-restore", &["--noflush"], Some(&input)).await?;
        }
        if full || self.hooks != desired.hooks {
            for hook in &desired.hooks {
                ensure_hook(netns, hook).await?;
            }
            for gone in self.hooks.iter().filter(|h| !desired.hooks.contains(h)) {
                remove_hook(netns, gone).await?;
            }
            self.hooks = desired.hooks.clone();
        }
        self.applied = Some(desired.tables.clone());
        Ok(stats)
    }
}

async fn ensure_hook(netns: Option<&str>, hook: &Hook) -> Result<(), Error> {
    let table = hook.table.as_str();
    let mut check = vec!["-w", "-t", table, "-C", hook.chain];
    check.extend(hook.rule.iter().map(String::as_str));
    if run(netns, "iptables", &check, None).await.is_ok() {
        return Ok(());
    }
    let mut insert = vec!["-w", "-t", table, "-I", hook.chain, "1"];
    insert.extend(hook.rule.iter().map(String::as_str));
    run(netns, "iptables", &insert, None).await.map(drop)
}

async fn remove_hook(netns: Option<&str>, hook: &Hook) -> Result<(), Error> {
    let mut delete = vec!["-w", "-t", hook.table.as_str(), "-D", hook.chain];
    delete.extend(hook.rule.iter().map(String::as_str));
    // Absent already: nothing to do.
    let _ = run(netns, "iptables", &delete, None).await;
    Ok(())
}

/// Removes `hooks` and every owned chain (when the proxy is turned off after an earlier
/// run).
pub async fn cleanup(netns: Option<&str>, hooks: &[Hook]) -> Result<(), Error> {
    for hook in hooks {
        remove_hook(netns, hook).await?;
    }
    let mut input = String::new();
    for table in [TableName::Nat, TableName::Filter] {
        let existing =
            owned_chains(&run(netns, "iptables-save", &["-t", table.as_str()], None).await?);
        let mut stats = SyncStats::default();
        if let Some(text) =
            restore_input(table, &Chains::new(), &Chains::new(), &existing, &mut stats)
        {
            input.push_str(&text);
        }
    }
    if !input.is_empty() {
        run(netns, "iptables-restore", &["--noflush"], Some(&input)).await?;
    }
    Ok(())
}

/// A short, stable chain name: `PREFIX` + `kind` + `-` + 16 hex digits of SHA-256(`key`).
pub fn chain_name(kind: &str, key: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut name = format!("{PREFIX}{kind}-");
    for b in &digest.as_ref()[..8] {
        let _ = write!(name, "{b:02X}");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chains(list: &[(&str, &[&str])]) -> Chains {
        list.iter()
            .map(|(n, r)| (n.to_string(), r.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn only_changed_chains_are_written() {
        let applied = chains(&[("RKUBE-A", &["-j ACCEPT"]), ("RKUBE-B", &["-j DROP"])]);
        let desired = chains(&[("RKUBE-A", &["-j ACCEPT"]), ("RKUBE-B", &["-j RETURN"])]);
        let mut stats = SyncStats::default();
        let text = restore_input(
            TableName::Nat,
            &applied,
            &desired,
            &BTreeSet::new(),
            &mut stats,
        )
        .expect("a change");
        assert_eq!(
            text,
            "*nat\n:RKUBE-B - [0:0]\n-A RKUBE-B -j RETURN\nCOMMIT\n"
        );
        assert_eq!(
            stats,
            SyncStats {
                written: 1,
                deleted: 0,
                rules: 1
            }
        );
        assert!(
            restore_input(
                TableName::Nat,
                &desired,
                &desired,
                &BTreeSet::new(),
                &mut stats
            )
            .is_none()
        );
    }

    #[test]
    fn stale_chains_are_flushed_and_deleted() {
        let applied = chains(&[("RKUBE-A", &["-j RKUBE-B"]), ("RKUBE-B", &["-j DROP"])]);
        let desired = chains(&[("RKUBE-A", &[])]);
        let existing: BTreeSet<String> = ["RKUBE-OLD".to_string()].into();
        let mut stats = SyncStats::default();
        let text = restore_input(TableName::Filter, &applied, &desired, &existing, &mut stats)
            .expect("a change");
        assert_eq!(
            text,
            "*filter\n:RKUBE-A - [0:0]\n:RKUBE-B - [0:0]\n:RKUBE-OLD - [0:0]\n-X RKUBE-B\n-X RKUBE-OLD\nCOMMIT\n"
        );
    }

    #[test]
    fn owned_chains_come_from_save_output() {
        let save = "*nat\n:PREROUTING ACCEPT [0:0]\n:RKUBE-SERVICES - [0:0]\n:CNI-abc - [0:0]\n-A PREROUTING -j RKUBE-SERVICES\nCOMMIT\n";
        assert_eq!(
            owned_chains(save),
            BTreeSet::from(["RKUBE-SERVICES".to_string()])
        );
    }

    #[test]
    fn chain_names_fit_iptables() {
        let name = chain_name("SVC", "default/web:http/TCP");
        assert_eq!(name.len(), "RKUBE-SVC-".len() + 16);
        assert!(name.len() <= 28);
        assert_eq!(name, chain_name("SVC", "default/web:http/TCP"));
        assert_ne!(name, chain_name("SVC", "default/web:https/TCP"));
    }
}
