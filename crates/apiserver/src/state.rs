//! The API server's shared state: registry, store, watch cache, credentials, settings.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use apimachinery::registry::{Registry, ResourceType};
use store::Store;

use crate::cache::{ResourceCache, WatchCache};

/// Tunables of the REST layer.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Events kept per resource for watches that resume from a resourceVersion.
    pub watch_cache_capacity: usize,
    /// How often a watch that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
    /// Watches without `timeoutSeconds` last between this and twice this (upstream's
    /// `--min-request-timeout`, 1800 s).
    pub min_request_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            watch_cache_capacity: 10_000,
            bookmark_interval: Duration::from_secs(60),
            min_request_timeout: Duration::from_secs(1800),
        }
    }
}

pub struct ApiState {
    registry: RwLock<Arc<Registry>>,
    pub store: Arc<dyn Store>,
    pub cache: Arc<WatchCache>,
    /// The admin bearer token.
    pub token: String,
    pub settings: Settings,
    pub docs: crate::docs::DocCache,
    /// `host:port` clients reach the API on (advertised in `/api`).
    pub advertise_address: String,
    /// The cluster CA certificate (PEM), served unauthenticated at `/cacerts` so a joining
    /// node can check it against the hash in its join token.
    pub ca_pem: String,
    /// What `/metrics` shows; components in the process register their collectors here.
    pub metrics: Arc<crate::metrics::ApiMetrics>,
}

impl ApiState {
    pub fn new(
        registry: Registry,
        store: Arc<dyn Store>,
        cache: Arc<WatchCache>,
        token: String,
        settings: Settings,
        advertise_address: String,
    ) -> Self {
        ApiState {
            registry: RwLock::new(Arc::new(registry)),
            store,
            cache,
            token,
            settings,
            docs: crate::docs::DocCache::default(),
            advertise_address,
            ca_pem: String::new(),
            metrics: Arc::default(),
        }
    }

    pub fn with_ca(mut self, ca_pem: String) -> Self {
        self.ca_pem = ca_pem;
        self
    }

    /// A snapshot of the registry (it is replaced, never mutated, when CRDs change).
    pub fn registry(&self) -> Arc<Registry> {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_registry(&self, registry: Registry) {
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(registry);
    }

    /// The watch cache of a resource (every registered resource has one).
    pub fn cache_of(&self, rt: &ResourceType) -> Arc<ResourceCache> {
        self.cache.ensure(&rt.storage_prefix())
    }
}
