//! TTL-after-finished controller: a finished Job goes `ttlSecondsAfterFinished` after it
//! finished, and its pods with it; a Job without a TTL stays.

use super::common::apply;
use super::job::{cluster_with_pods_running, job, wait_condition};
use super::{names, wait_count, wait_gone};

#[test]
fn a_finished_job_goes_with_its_pods_once_its_ttl_passed() {
    let (s, _sim) = cluster_with_pods_running(1);
    apply(&s, &job("brief", "ttlSecondsAfterFinished: 1", ""));
    apply(&s, &job("kept", "", ""));
    wait_condition(&s, "job/kept", "complete");
    wait_gone(&s, &["get", "job", "brief"]);
    wait_count(&s, &["pods", "-l", "job-name=brief"], 0);
    // The Job without a TTL finished as early and is still there, with its pod.
    assert_eq!(names(&s, &["jobs"]), ["kept"]);
    assert_eq!(names(&s, &["pods", "-l", "job-name=kept"]).len(), 1);
}
