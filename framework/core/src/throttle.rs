//! Online password guessing: failed password-role verifications are counted
//! per remote host; each failure doubles the wait before that host's next
//! handshake is served, and after `block_after` failures the host is refused
//! for `block_for`. Successful peers from other hosts are unaffected.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Guessing limits.
#[derive(Debug, Clone)]
pub struct GuessLimits {
    /// Wait after the first failure; doubles with each further one.
    pub first_delay: Duration,
    /// Failures after which the host is refused outright.
    pub block_after: u32,
    pub block_for: Duration,
    /// Hosts remembered at most (oldest forgotten first): bounded memory.
    pub max_hosts: usize,
}

impl Default for GuessLimits {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(500),
            block_after: 5,
            block_for: Duration::from_secs(300),
            max_hosts: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    /// No handshake from this host is served before this instant.
    not_before: Instant,
    last_seen: Instant,
}

#[derive(Debug)]
pub(crate) struct GuessThrottle {
    limits: GuessLimits,
    hosts: HashMap<String, Record>,
}

/// Whether a handshake from a host may be served now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    /// Too soon after a failure, or refused for a while.
    Refuse {
        for_another: Duration,
    },
}

impl GuessThrottle {
    pub(crate) fn new(limits: GuessLimits) -> Self {
        Self {
            limits,
            hosts: HashMap::new(),
        }
    }

    pub(crate) fn check(&self, host: &str, now: Instant) -> Verdict {
        match self.hosts.get(host) {
            Some(record) if now < record.not_before => Verdict::Refuse {
                for_another: record.not_before - now,
            },
            _ => Verdict::Allow,
        }
    }

    pub(crate) fn record_failure(&mut self, host: &str, role: &str, now: Instant) {
        if !self.hosts.contains_key(host) && self.hosts.len() >= self.limits.max_hosts {
            // Forget the host seen least recently: memory stays bounded.
            if let Some(oldest) = self
                .hosts
                .iter()
                .min_by_key(|(_, r)| r.last_seen)
                .map(|(h, _)| h.clone())
            {
                self.hosts.remove(&oldest);
            }
        }
        let record = self.hosts.entry(host.to_owned()).or_insert(Record {
            failures: 0,
            not_before: now,
            last_seen: now,
        });
        record.failures = record.failures.saturating_add(1);
        record.last_seen = now;
        let wait = if record.failures >= self.limits.block_after {
            self.limits.block_for
        } else {
            self.limits
                .first_delay
                .saturating_mul(1 << (record.failures - 1).min(16))
        };
        record.not_before = now + wait;
        tracing::warn!(
            host,
            role,
            failures = record.failures,
            refused_for_ms = wait.as_millis() as u64,
            "password role failed to verify: possible online guessing"
        );
    }

    /// A handshake from `host` verified: its count starts over.
    pub(crate) fn record_success(&mut self, host: &str) {
        self.hosts.remove(host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_then_blocks_and_other_hosts_are_unaffected() {
        let limits = GuessLimits {
            first_delay: Duration::from_secs(1),
            block_after: 3,
            block_for: Duration::from_secs(60),
            max_hosts: 2,
        };
        let mut throttle = GuessThrottle::new(limits);
        let t = Instant::now();
        assert_eq!(throttle.check("a", t), Verdict::Allow);
        throttle.record_failure("a", "r", t);
        assert_eq!(
            throttle.check("a", t),
            Verdict::Refuse {
                for_another: Duration::from_secs(1)
            }
        );
        assert_eq!(
            throttle.check("a", t + Duration::from_secs(1)),
            Verdict::Allow
        );
        throttle.record_failure("a", "r", t);
        assert_eq!(
            throttle.check("a", t),
            Verdict::Refuse {
                for_another: Duration::from_secs(2)
            }
        );
        throttle.record_failure("a", "r", t);
        assert_eq!(
            throttle.check("a", t + Duration::from_secs(59)),
            Verdict::Refuse {
                for_another: Duration::from_secs(1)
            }
        );
        assert_eq!(throttle.check("b", t), Verdict::Allow);
        throttle.record_success("a");
        assert_eq!(throttle.check("a", t), Verdict::Allow);
    }

    #[test]
    fn memory_is_bounded() {
        let limits = GuessLimits {
            max_hosts: 2,
            ..GuessLimits::default()
        };
        let mut throttle = GuessThrottle::new(limits);
        let t = Instant::now();
        for (i, host) in ["a", "b", "c"].iter().enumerate() {
            throttle.record_failure(host, "r", t + Duration::from_millis(i as u64));
        }
        assert_eq!(throttle.hosts.len(), 2);
        assert_eq!(
            throttle.check("a", t),
            Verdict::Allow,
            "the oldest host was forgotten"
        );
    }
}
