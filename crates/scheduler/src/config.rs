//! `KubeSchedulerConfiguration` (`kubescheduler.config.k8s.io/v1`): profiles, plugins enabled
//! and disabled per extension point, score weights and plugin args, merged with upstream's
//! defaults the way upstream merges them, then built into one [`Framework`] per profile.
//!
//! ```yaml
//! apiVersion: kubescheduler.config.k8s.io/v1
//! kind: KubeSchedulerConfiguration
//! profiles:
//! - schedulerName: bin-packing
//!   pluginConfig:
//!   - name: NodeResourcesFit
//!     args:
//!       scoringStrategy:
//!         type: MostAllocated
//!         resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}]
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::framework::runtime::Scored;
use crate::framework::{Framework, Handle, Plugin, Points};
use crate::plugins::registry::{DEFAULT_PLUGINS, NOT_IMPLEMENTED, factory};

pub const API_VERSION: &str = "kubescheduler.config.k8s.io/v1";
pub const KIND: &str = "KubeSchedulerConfiguration";
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading scheduler configuration {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("decoding scheduler configuration: {0}")]
    Decode(String),
    #[error("invalid scheduler configuration: {0}")]
    Invalid(String),
    #[error("profile {profile:?}: {message}")]
    Plugin { profile: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A plugin reference in a plugin set.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct PluginRef {
    pub name: String,
    #[serde(default)]
    pub weight: Option<i32>,
}

/// Enabled and disabled plugins of one extension point.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

/// `profiles[].plugins`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Plugins {
    #[serde(default)]
    pub pre_enqueue: PluginSet,
    #[serde(default)]
    pub queue_sort: PluginSet,
    #[serde(default)]
    pub pre_filter: PluginSet,
    #[serde(default)]
    pub filter: PluginSet,
    #[serde(default)]
    pub post_filter: PluginSet,
    #[serde(default)]
    pub pre_score: PluginSet,
    #[serde(default)]
    pub score: PluginSet,
    #[serde(default)]
    pub reserve: PluginSet,
    #[serde(default)]
    pub permit: PluginSet,
    #[serde(default)]
    pub pre_bind: PluginSet,
    #[serde(default)]
    pub bind: PluginSet,
    #[serde(default)]
    pub post_bind: PluginSet,
    #[serde(default)]
    pub multi_point: PluginSet,
}

impl Plugins {
    /// Every extension point with its set and the capability it needs.
    fn points(&self) -> [(&'static str, &PluginSet, Points); 12] {
        [
            ("PreEnqueuePlugin", &self.pre_enqueue, Points::PRE_ENQUEUE),
            ("QueueSortPlugin", &self.queue_sort, Points::QUEUE_SORT),
            ("PreFilterPlugin", &self.pre_filter, Points::PRE_FILTER),
            ("FilterPlugin", &self.filter, Points::FILTER),
            ("PostFilterPlugin", &self.post_filter, Points::POST_FILTER),
            ("PreScorePlugin", &self.pre_score, Points::PRE_SCORE),
            ("ScorePlugin", &self.score, Points::SCORE),
            ("ReservePlugin", &self.reserve, Points::RESERVE),
            ("PermitPlugin", &self.permit, Points::PERMIT),
            ("PreBindPlugin", &self.pre_bind, Points::PRE_BIND),
            ("BindPlugin", &self.bind, Points::BIND),
            ("PostBindPlugin", &self.post_bind, Points::POST_BIND),
        ]
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PluginConfigEntry {
    name: String,
    #[serde(default)]
    args: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileFile {
    #[serde(default)]
    scheduler_name: Option<String>,
    #[serde(default)]
    percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    plugins: Option<Plugins>,
    #[serde(default)]
    plugin_config: Vec<PluginConfigEntry>,
}

/// The file. Fields rkube does not use (clientConnection, leaderElection, …) are accepted.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    parallelism: Option<i32>,
    #[serde(default)]
    percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    pod_initial_backoff_seconds: Option<i64>,
    #[serde(default)]
    pod_max_backoff_seconds: Option<i64>,
    #[serde(default)]
    profiles: Vec<ProfileFile>,
}

/// One profile as configured (before merging with the defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileConfig {
    pub scheduler_name: String,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub plugins: Plugins,
    /// Plugin name → args.
    pub plugin_config: BTreeMap<String, serde_json::Value>,
}

impl ProfileConfig {
    /// The default profile under another name.
    pub fn named(name: &str) -> ProfileConfig {
        ProfileConfig {
            scheduler_name: name.to_string(),
            percentage_of_nodes_to_score: None,
            plugins: Plugins::default(),
            plugin_config: BTreeMap::new(),
        }
    }
}

/// Everything [`crate::run`] needs besides a client.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerConfig {
    pub profiles: Vec<ProfileConfig>,
    /// 0 = adaptive (50% minus 1% per 125 nodes, at least 5%), as upstream.
    pub percentage_of_nodes_to_score: i32,
    pub pod_initial_backoff: Duration,
    pub pod_max_backoff: Duration,
    /// Accepted for compatibility; the scheduling loop is single-threaded by design.
    pub parallelism: i32,
    /// Bindings in flight at once (rkube setting, not in the file).
    pub bind_concurrency: usize,
    /// Whether to write `Scheduled` / `FailedScheduling` events (rkube setting).
    pub record_events: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            profiles: vec![ProfileConfig::named(DEFAULT_SCHEDULER_NAME)],
            percentage_of_nodes_to_score: 0,
            pod_initial_backoff: Duration::from_secs(1),
            pod_max_backoff: Duration::from_secs(10),
            parallelism: 16,
            bind_concurrency: 64,
            record_events: true,
        }
    }
}

/// Reads and validates a `KubeSchedulerConfiguration` file.
pub fn load_config(path: impl AsRef<Path>) -> Result<SchedulerConfig> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_config(&text)
}

/// Parses a `KubeSchedulerConfiguration` (YAML or JSON) and checks that its profiles build.
pub fn parse_config(text: &str) -> Result<SchedulerConfig> {
    let file: ConfigFile =
        serde_saphyr::from_str(text).map_err(|e| Error::Decode(e.to_string()))?;
    match file.api_version.as_deref() {
        Some(API_VERSION) => {}
        Some(other) => {
            return Err(Error::Decode(format!(
                "no kind \"{}\" is registered for version \"{other}\"",
                file.kind.as_deref().unwrap_or(KIND)
            )));
        }
        None => return Err(Error::Decode("Object 'apiVersion' is missing".into())),
    }
    if file.kind.as_deref() != Some(KIND) {
        return Err(Error::Decode(format!(
            "no kind \"{}\" is registered for version \"{API_VERSION}\"",
            file.kind.as_deref().unwrap_or("")
        )));
    }
    let mut cfg = SchedulerConfig::default();
    if let Some(p) = file.percentage_of_nodes_to_score {
        if !(0..=100).contains(&p) {
            return Err(Error::Invalid(format!(
                "percentageOfNodesToScore: Invalid value: {p}: not in valid range [0-100]"
            )));
        }
        cfg.percentage_of_nodes_to_score = p;
    }
    if let Some(p) = file.parallelism {
        if p <= 0 {
            return Err(Error::Invalid(format!(
                "parallelism: Invalid value: {p}: should be an integer value greater than zero"
            )));
        }
        cfg.parallelism = p;
    }
    if let Some(s) = file.pod_initial_backoff_seconds {
        if s <= 0 {
            return Err(Error::Invalid(format!(
                "podInitialBackoffSeconds: Invalid value: {s}: must be greater than 0"
            )));
        }
        cfg.pod_initial_backoff = Duration::from_secs(s as u64);
    }
    if let Some(s) = file.pod_max_backoff_seconds {
        cfg.pod_max_backoff = Duration::from_secs(s.max(0) as u64);
    }
    if cfg.pod_max_backoff < cfg.pod_initial_backoff {
        return Err(Error::Invalid(
            "podMaxBackoffSeconds: Invalid value: must be greater than or equal to PodInitialBackoffSeconds".into(),
        ));
    }
    if !file.profiles.is_empty() {
        cfg.profiles = file
            .profiles
            .into_iter()
            .map(|p| {
                let mut plugin_config = BTreeMap::new();
                for e in p.plugin_config {
                    if plugin_config.contains_key(&e.name) {
                        return Err(Error::Invalid(format!(
                            "profiles.pluginConfig: Duplicate value: \"{}\"",
                            e.name
                        )));
                    }
                    plugin_config.insert(e.name, e.args.unwrap_or(serde_json::json!({})));
                }
                Ok(ProfileConfig {
                    scheduler_name: p
                        .scheduler_name
                        .filter(|n| !n.is_empty())
                        .unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.to_string()),
                    percentage_of_nodes_to_score: p.percentage_of_nodes_to_score,
                    plugins: p.plugins.unwrap_or_default(),
                    plugin_config,
                })
            })
            .collect::<Result<Vec<_>>>()?;
    }
    cfg.build()?;
    Ok(cfg)
}

/// Upstream `mergePluginSet`: defaults minus disabled (`*` = all), a custom entry for a
/// default plugin replaces it in place, other custom entries follow.
fn merge_set(default: &PluginSet, custom: &PluginSet) -> PluginSet {
    let disabled: Vec<&str> = custom.disabled.iter().map(|p| p.name.as_str()).collect();
    let mut enabled = Vec::new();
    let mut replaced = vec![false; custom.enabled.len()];
    if !disabled.contains(&"*") {
        for d in &default.enabled {
            if disabled.contains(&d.name.as_str()) {
                continue;
            }
            match custom.enabled.iter().position(|c| c.name == d.name) {
                Some(i) => {
                    replaced[i] = true;
                    enabled.push(custom.enabled[i].clone());
                }
                None => enabled.push(d.clone()),
            }
        }
    }
    for (i, c) in custom.enabled.iter().enumerate() {
        if !replaced[i] {
            enabled.push(c.clone());
        }
    }
    PluginSet {
        enabled,
        disabled: custom.disabled.clone(),
    }
}

fn default_multi_point() -> PluginSet {
    PluginSet {
        enabled: DEFAULT_PLUGINS
            .iter()
            .map(|(n, w)| PluginRef {
                name: (*n).to_string(),
                weight: (*w != 0).then_some(*w),
            })
            .collect(),
        disabled: Vec::new(),
    }
}

fn implemented(name: &str) -> bool {
    !NOT_IMPLEMENTED.contains(&name)
}

impl SchedulerConfig {
    /// Builds one framework per profile. Fails on unknown plugins, plugins enabled at a point
    /// they do not implement, double registration, bad args and duplicate scheduler names.
    pub fn build(&self) -> Result<Vec<Framework>> {
        let mut names: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for p in &self.profiles {
            if names.contains(&p.scheduler_name.as_str()) {
                return Err(Error::Invalid(format!(
                    "profiles[].schedulerName: Duplicate value: \"{}\"",
                    p.scheduler_name
                )));
            }
            names.push(&p.scheduler_name);
            out.push(
                build_profile(p, self.percentage_of_nodes_to_score).map_err(|message| {
                    Error::Plugin {
                        profile: p.scheduler_name.clone(),
                        message,
                    }
                })?,
            );
        }
        Ok(out)
    }
}

fn build_profile(p: &ProfileConfig, global_pct: i32) -> std::result::Result<Framework, String> {
    if let Some(pct) = p.percentage_of_nodes_to_score
        && !(0..=100).contains(&pct)
    {
        return Err(format!(
            "percentageOfNodesToScore: Invalid value: {pct}: not in valid range [0-100]"
        ));
    }
    let multi = merge_set(&default_multi_point(), &p.plugins.multi_point);
    let empty = PluginSet::default();
    let points: Vec<(&'static str, PluginSet, Points)> = p
        .plugins
        .points()
        .into_iter()
        .map(|(n, set, cap)| (n, merge_set(&empty, set), cap))
        .collect();

    // Instantiate every plugin enabled anywhere, once.
    let handle = Handle {
        profile: p.scheduler_name.clone(),
    };
    let mut plugins: Vec<Arc<dyn Plugin>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let all = multi
        .enabled
        .iter()
        .chain(points.iter().flat_map(|(_, s, _)| s.enabled.iter()));
    for r in all {
        if index.contains_key(&r.name) || !implemented(&r.name) {
            if !implemented(&r.name) {
                tracing::debug!(plugin = %r.name, profile = %p.scheduler_name, "plugin not implemented by rkube; left out");
            }
            continue;
        }
        let f = factory(&r.name).ok_or_else(|| format!("plugin {:?} does not exist", r.name))?;
        let plugin = f(p.plugin_config.get(&r.name), &handle)
            .map_err(|e| format!("initializing plugin {:?}: {e}", r.name))?;
        index.insert(r.name.clone(), plugins.len());
        plugins.push(plugin);
    }
    for name in p.plugin_config.keys() {
        if !index.contains_key(name) && implemented(name) && factory(name).is_none() {
            return Err(format!("pluginConfig: plugin {name:?} does not exist"));
        }
    }

    // Expand multiPoint into each extension point (upstream `expandMultiPointPlugins`).
    let mut resolved: HashMap<&'static str, Vec<usize>> = HashMap::new();
    for (point, set, cap) in &points {
        let explicit: Vec<&str> = set
            .enabled
            .iter()
            .map(|r| r.name.as_str())
            .filter(|n| implemented(n))
            .collect();
        for n in &explicit {
            if !plugins[index[*n]].points().has(*cap) {
                return Err(format!("plugin {n:?} does not extend {point} plugin"));
            }
        }
        let disabled: Vec<&str> = set.disabled.iter().map(|r| r.name.as_str()).collect();
        let mut list: Vec<&str> = Vec::new();
        if !disabled.contains(&"*") {
            let mut overrides = Vec::new();
            let mut from_multi = Vec::new();
            for r in &multi.enabled {
                let n = r.name.as_str();
                if !implemented(n) || !plugins[index[n]].points().has(*cap) || disabled.contains(&n)
                {
                    continue;
                }
                if explicit.contains(&n) {
                    overrides.push(n);
                } else if from_multi.contains(&n) {
                    return Err(format!("plugin {n:?} already registered as {point:?}"));
                } else {
                    from_multi.push(n);
                }
            }
            list.extend(explicit.iter().filter(|n| overrides.contains(n)));
            list.extend(from_multi);
            list.extend(explicit.iter().filter(|n| !overrides.contains(n)));
        } else {
            list.extend(explicit.iter());
        }
        let mut seen = Vec::new();
        for n in &list {
            if seen.contains(n) {
                return Err(format!("plugin {n:?} already registered as {point:?}"));
            }
            seen.push(*n);
        }
        resolved.insert(point, list.iter().map(|n| index[*n]).collect());
    }

    // Score weights: the score point's own weight wins, then multiPoint's; 0 means 1.
    let score_refs = points
        .iter()
        .find(|(n, _, _)| *n == "ScorePlugin")
        .map(|(_, s, _)| s.enabled.clone())
        .unwrap_or_default();
    let weight_of = |name: &str| -> i64 {
        let w = score_refs
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.weight)
            .or_else(|| {
                multi
                    .enabled
                    .iter()
                    .find(|r| r.name == name)
                    .and_then(|r| r.weight)
            })
            .unwrap_or(0);
        i64::from(if w == 0 { 1 } else { w })
    };
    let take = |point: &str| resolved.get(point).cloned().unwrap_or_default();
    let score = take("ScorePlugin")
        .into_iter()
        .map(|i| Scored {
            plugin: i,
            weight: weight_of(plugins[i].name()),
        })
        .collect();
    let bind = take("BindPlugin");
    if bind.is_empty() {
        return Err("at least one bind plugin is needed".into());
    }
    Ok(Framework {
        scheduler_name: p.scheduler_name.clone(),
        percentage_of_nodes_to_score: p
            .percentage_of_nodes_to_score
            .or((global_pct != 0).then_some(global_pct)),
        pre_filter: take("PreFilterPlugin"),
        filter: take("FilterPlugin"),
        post_filter: take("PostFilterPlugin"),
        pre_score: take("PreScorePlugin"),
        score,
        reserve: take("ReservePlugin"),
        bind,
        plugins,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_matches_upstream() {
        let fws = SchedulerConfig::default().build().expect("build");
        let fw = &fws[0];
        assert_eq!(fw.scheduler_name, "default-scheduler");
        assert_eq!(
            fw.filter_names(),
            [
                "NodeUnschedulable",
                "NodeName",
                "TaintToleration",
                "NodeAffinity",
                "NodePorts",
                "NodeResourcesFit",
                "PodTopologySpread",
                "InterPodAffinity"
            ]
        );
        assert_eq!(
            fw.score_weights(),
            [
                ("TaintToleration", 3),
                ("NodeAffinity", 2),
                ("NodeResourcesFit", 1),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 2),
                ("NodeResourcesBalancedAllocation", 1),
                ("ImageLocality", 1)
            ]
        );
        assert_eq!(fw.post_filter_names(), ["DefaultPreemption"]);
        assert_eq!(fw.bind_names(), ["DefaultBinder"]);
    }

    #[test]
    fn profiles_weights_and_args_from_yaml() {
        let cfg = parse_config(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
podMaxBackoffSeconds: 20
leaderElection:
  leaderElect: false
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packing
  plugins:
    score:
      enabled:
      - name: NodeResourcesFit
        weight: 5
      disabled:
      - name: NodeResourcesBalancedAllocation
      - name: VolumeBinding
    filter:
      disabled:
      - name: NodePorts
  pluginConfig:
  - name: NodeResourcesFit
    args:
      apiVersion: kubescheduler.config.k8s.io/v1
      kind: NodeResourcesFitArgs
      scoringStrategy:
        type: MostAllocated
        resources:
        - name: cpu
          weight: 1
        - name: memory
          weight: 1
"#,
        )
        .expect("config");
        assert_eq!(cfg.percentage_of_nodes_to_score, 30);
        assert_eq!(cfg.pod_max_backoff, Duration::from_secs(20));
        let fws = cfg.build().expect("build");
        assert_eq!(fws.len(), 2);
        let bp = &fws[1];
        assert_eq!(bp.scheduler_name, "bin-packing");
        assert!(!bp.filter_names().contains(&"NodePorts"));
        let w = bp.score_weights();
        assert!(w.contains(&("NodeResourcesFit", 5)), "{w:?}");
        assert!(
            !w.iter()
                .any(|(n, _)| *n == "NodeResourcesBalancedAllocation")
        );
        assert_eq!(bp.percentage_of_nodes_to_score, Some(30));
    }

    #[test]
    fn disabling_everything_and_enabling_one() {
        let cfg = parse_config(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: minimal
  plugins:
    multiPoint:
      disabled: [{name: "*"}]
      enabled: [{name: NodeResourcesFit, weight: 2}, {name: DefaultBinder}, {name: PrioritySort}]
"#,
        )
        .expect("config");
        let fw = &cfg.build().expect("build")[0];
        assert_eq!(fw.filter_names(), ["NodeResourcesFit"]);
        assert_eq!(fw.score_weights(), [("NodeResourcesFit", 2)]);
        assert!(fw.post_filter_names().is_empty());
    }

    #[test]
    fn bad_configuration_is_rejected() {
        let base = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n";
        let bad = [
            "profiles:\n- schedulerName: a\n  plugins:\n    filter:\n      enabled: [{name: Nope}]\n",
            "profiles:\n- schedulerName: a\n  plugins:\n    filter:\n      enabled: [{name: ImageLocality}]\n",
            "profiles:\n- schedulerName: a\n- schedulerName: a\n",
            "profiles:\n- schedulerName: a\n  pluginConfig:\n  - name: NodeResourcesFit\n    args: {scoringStrategy: {type: Weird}}\n",
            "percentageOfNodesToScore: 101\n",
        ];
        for b in bad {
            assert!(parse_config(&format!("{base}{b}")).is_err(), "{b}");
        }
        assert!(parse_config("apiVersion: v1\nkind: Pod\n").is_err());
    }
}
