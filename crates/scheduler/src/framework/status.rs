//! The outcome of one plugin at one extension point (upstream `framework.Status`).
//!
//! Expected outcomes are values: a filter that rejects a node returns `Unschedulable` with the
//! reasons upstream prints, not an error. A success carries no allocation; a rejection with one
//! constant reason carries none either, which keeps filtering thousands of nodes cheap.

use std::borrow::Cow;
use std::fmt;

/// Upstream's status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    Success,
    /// An internal failure: the pod is retried with backoff, reason `SchedulerError`.
    Error,
    /// The node does not fit now; preemption may help.
    Unschedulable,
    /// The node does not fit and preemption cannot change that.
    UnschedulableAndUnresolvable,
    /// Wait (Permit); unused by the built-in plugins.
    Wait,
    /// The plugin has nothing to do for this pod: at PreFilter/PreScore it also skips the
    /// matching Filter/Score calls for the rest of the cycle.
    Skip,
    /// Pending: the pod waits for something outside the scheduler.
    Pending,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Success => "Success",
            Code::Error => "Error",
            Code::Unschedulable => "Unschedulable",
            Code::UnschedulableAndUnresolvable => "UnschedulableAndUnresolvable",
            Code::Wait => "Wait",
            Code::Skip => "Skip",
            Code::Pending => "Pending",
        }
    }
}

pub type Reason = Cow<'static, str>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Reasons {
    #[default]
    None,
    One(Reason),
    Many(Vec<Reason>),
}

/// A code, the reasons behind it, and the plugin that returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    code: Code,
    reasons: Reasons,
    plugin: &'static str,
}

impl Default for Status {
    fn default() -> Self {
        Status::success()
    }
}

impl Status {
    pub const fn success() -> Status {
        Status {
            code: Code::Success,
            reasons: Reasons::None,
            plugin: "",
        }
    }

    pub fn new(code: Code, reason: impl Into<Reason>) -> Status {
        Status {
            code,
            reasons: Reasons::One(reason.into()),
            plugin: "",
        }
    }

    pub fn with_reasons(code: Code, reasons: Vec<Reason>) -> Status {
        let reasons = match reasons.len() {
            0 => Reasons::None,
            1 => Reasons::One(reasons.into_iter().next().unwrap_or_default()),
            _ => Reasons::Many(reasons),
        };
        Status {
            code,
            reasons,
            plugin: "",
        }
    }

    pub const fn code_only(code: Code) -> Status {
        Status {
            code,
            reasons: Reasons::None,
            plugin: "",
        }
    }

    pub const fn skip() -> Status {
        Status::code_only(Code::Skip)
    }

    pub fn unschedulable(reason: impl Into<Reason>) -> Status {
        Status::new(Code::Unschedulable, reason)
    }

    pub fn unresolvable(reason: impl Into<Reason>) -> Status {
        Status::new(Code::UnschedulableAndUnresolvable, reason)
    }

    pub fn error(reason: impl Into<Reason>) -> Status {
        Status::new(Code::Error, reason)
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn plugin(&self) -> &'static str {
        self.plugin
    }

    pub fn with_plugin(mut self, plugin: &'static str) -> Status {
        self.plugin = plugin;
        self
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }

    /// Unschedulable or UnschedulableAndUnresolvable (upstream `IsRejected`, minus Pending).
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable | Code::Pending
        )
    }

    pub fn reasons(&self) -> &[Reason] {
        match &self.reasons {
            Reasons::None => &[],
            Reasons::One(r) => std::slice::from_ref(r),
            Reasons::Many(v) => v,
        }
    }

    /// The reasons joined with `, ` (upstream `Status.Message`).
    pub fn message(&self) -> String {
        self.reasons()
            .iter()
            .map(|r| r.as_ref())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reasons().is_empty() {
            f.write_str(self.code.as_str())
        } else {
            f.write_str(&self.message())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_message() {
        let s = Status::with_reasons(
            Code::Unschedulable,
            vec!["Insufficient cpu".into(), "Insufficient memory".into()],
        )
        .with_plugin("NodeResourcesFit");
        assert_eq!(s.message(), "Insufficient cpu, Insufficient memory");
        assert!(s.is_rejected());
        assert_eq!(s.plugin(), "NodeResourcesFit");
        assert!(Status::success().is_success());
        assert_eq!(Status::success().reasons().len(), 0);
        assert_eq!(Status::unresolvable("x").reasons(), ["x"]);
    }
}
