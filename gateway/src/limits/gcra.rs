//! The generic cell rate algorithm: one number per bucket (the theoretical arrival time of
//! the next request), so a check is one read and one write, atomic in a Lua script on Redis
//! and under a mutex locally. `count` requests per `period` may arrive at once; after that
//! one more each `period / count` (so a window of one period may see up to `2 × count`
//! at its edges: the standard trade of GCRA and token buckets for O(1) state).

use std::time::Duration;

/// `count` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u64,
    pub period: Duration,
}

impl Rate {
    /// `10/10s`, `600/1m`, `5/1h`, `100/500ms`; `off` (or empty) is no limit.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.is_empty() || text == "off" {
            return Ok(None);
        }
        let err = || format!("'{text}': write COUNT/PERIOD, e.g. 10/10s, 600/1m, or off");
        let (count, period) = text.split_once('/').ok_or_else(err)?;
        let count: u64 = count.trim().parse().map_err(|_| err())?;
        let period = period.trim();
        let split = period
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(period.len());
        let (n, unit) = period.split_at(split);
        let n: u64 = if n.is_empty() {
            1
        } else {
            n.parse().map_err(|_| err())?
        };
        let ms = match unit {
            "ms" => n,
            "s" => n * 1000,
            "m" => n * 60_000,
            "h" => n * 3_600_000,
            _ => return Err(err()),
        };
        if count == 0 || ms == 0 {
            return Err(err());
        }
        Ok(Some(Self {
            count,
            period: Duration::from_millis(ms),
        }))
    }

    fn period_ms(&self) -> i64 {
        self.period.as_millis() as i64
    }

    /// Milliseconds between requests at the steady rate (at least 1).
    pub fn interval_ms(&self) -> i64 {
        (self.period_ms() / self.count as i64).max(1)
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u64,
    pub period: Duration,
    /// Requests still allowed right now.
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset: Duration,
    /// When refused: how long to wait.
    pub retry_after: Duration,
}

impl Verdict {
    /// From the bucket's state after the check: `used_ms` = theoretical arrival time − now.
    pub fn from_state(rate: &Rate, allowed: bool, retry_after_ms: i64, used_ms: i64) -> Self {
        let interval = rate.interval_ms();
        let free = (rate.period_ms() - used_ms).max(0);
        Self {
            allowed,
            limit: rate.count,
            period: rate.period,
            remaining: ((free / interval) as u64).min(rate.count),
            reset: Duration::from_millis(used_ms.max(0) as u64),
            retry_after: Duration::from_millis(retry_after_ms.max(0) as u64),
        }
    }
}

/// One check against a bucket whose stored arrival time is `tat` (None: empty), at `now`
/// (ms). Returns the verdict's raw parts `(allowed, retry_after_ms, used_ms)` and the new
/// arrival time to store (None: leave as is).
pub fn check(rate: &Rate, tat: Option<i64>, now: i64) -> ((bool, i64, i64), Option<i64>) {
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + rate.interval_ms();
    let allow_at = new_tat - rate.period_ms();
    if now < allow_at {
        ((false, allow_at - now, tat - now), None)
    } else {
        ((true, 0, new_tat - now), Some(new_tat))
    }
}

/// The same check as [`check`], atomically in Redis, with Redis's clock (so instances with
/// skewed clocks agree). KEYS[1] = bucket; ARGV = interval ms, period ms.
/// Returns `{allowed 0|1, retry_after_ms, used_ms}`.
pub const SCRIPT: &str = include_str!("gcra.lua");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rates_parse() {
        let r = Rate::parse("10/10s").unwrap().unwrap();
        assert_eq!((r.count, r.period), (10, Duration::from_secs(10)));
        assert_eq!(
            Rate::parse("600/m").unwrap().unwrap().period,
            Duration::from_secs(60)
        );
        assert_eq!(Rate::parse("off").unwrap(), None);
        for bad in ["10", "0/1s", "10/0s", "x/1s", "10/1d", "10/s1"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    /// Replays requests at the given times through the local check.
    fn replay(rate: &Rate, times: &[i64]) -> Vec<bool> {
        let mut tat = None;
        times
            .iter()
            .map(|&now| {
                let ((allowed, _, _), next) = check(rate, tat, now);
                if next.is_some() {
                    tat = next;
                }
                allowed
            })
            .collect()
    }

    #[test]
    fn a_burst_of_count_then_one_per_interval() {
        let rate = Rate::parse("10/10s").unwrap().unwrap();
        let at_once = replay(&rate, &[0; 11]);
        assert_eq!(at_once.iter().filter(|a| **a).count(), 10);
        assert!(!at_once[10]);
        // After 1 s one more is allowed, and the refusal said so.
        let ((_, retry, _), _) = check(&rate, Some(10_000), 0);
        assert_eq!(retry, 1000);
        assert_eq!(
            replay(&rate, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1000]).last(),
            Some(&true)
        );
    }

    proptest! {
        /// A burst of at most `count`, then no faster than one per interval: in any window
        /// of length `w`, at most `count + w / interval + 1` requests pass.
        #[test]
        fn never_faster_than_burst_plus_rate(count in 1u64..20, period in 100i64..5000,
                                             gaps in proptest::collection::vec(0i64..400, 1..200)) {
            let rate = Rate { count, period: Duration::from_millis(period as u64) };
            let mut times = Vec::new();
            let mut t = 0;
            for g in gaps { t += g; times.push(t); }
            let allowed: Vec<i64> = times.iter().zip(replay(&rate, &times))
                .filter(|(_, a)| *a).map(|(t, _)| *t).collect();
            for w in [period / 2, period, 4 * period] {
                let bound = count + (w / rate.interval_ms()) as u64 + 1;
                for (i, start) in allowed.iter().enumerate() {
                    let within = allowed[i..].iter().take_while(|t| **t < start + w).count();
                    prop_assert!(within as u64 <= bound, "{within} in {w} ms at {start}");
                }
            }
        }

        /// Requests spaced at least one interval apart are never refused.
        #[test]
        fn a_steady_client_is_never_refused(count in 1u64..20, period in 100i64..5000, n in 1usize..100) {
            let rate = Rate { count, period: Duration::from_millis(period as u64) };
            let times: Vec<i64> = (0..n as i64).map(|i| i * rate.interval_ms()).collect();
            prop_assert!(replay(&rate, &times).iter().all(|a| *a));
        }
    }
}
