//! Every controller, by the name `--controllers` uses (upstream's names).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::{Ctx, Runner};

pub type Factory = fn(&Arc<Ctx>, CancellationToken) -> Runner;

pub const ALL: &[(&str, Factory)] = &[
    (crate::namespace::NAME, crate::namespace::new),
    (crate::serviceaccount::NAME, crate::serviceaccount::new),
    (crate::garbagecollector::NAME, crate::garbagecollector::new),
    (crate::replicaset::NAME, crate::replicaset::new),
    (crate::deployment::NAME, crate::deployment::new),
    (crate::endpoint::NAME, crate::endpoint::new),
    (crate::endpointslice::NAME, crate::endpointslice::new),
    (crate::servicelb::NAME, crate::servicelb::new),
    (crate::nodelifecycle::NAME, crate::nodelifecycle::new),
    (crate::disruption::NAME, crate::disruption::new),
    (crate::podgc::NAME, crate::podgc::new),
    (crate::job::NAME, crate::job::new),
    (crate::ttlafterfinished::NAME, crate::ttlafterfinished::new),
    (crate::statefulset::NAME, crate::statefulset::new),
    (crate::daemonset::NAME, crate::daemonset::new),
    (crate::cronjob::NAME, crate::cronjob::new),
];
