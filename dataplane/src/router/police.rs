//! Policing of exception traffic: a token bucket per exception class, per worker, driven
//! by a timestamp the caller passes in (TSC cycles), so a flood of one kind (ARP storm,
//! ping flood, TTL-1 scan) cannot starve the kernel, the TAP or the other classes.

use super::ExceptionClass;

/// A token bucket in the GCRA form (one timestamp, no division per packet): it admits
/// `rate` packets per second on average and bursts of up to `burst` back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    /// Cycles per token; 0 admits everything.
    interval: u64,
    /// How far ahead of `now` the theoretical arrival time may run: (burst - 1) * interval.
    tolerance: u64,
    /// Theoretical arrival time of the next conforming packet.
    tat: u64,
    /// False: admits nothing (rate or burst 0).
    open: bool,
}

impl TokenBucket {
    /// `rate` packets per second, bursts of `burst`, with timestamps counting `hz` per
    /// second (the TSC frequency). A rate or burst of 0 admits nothing; a rate above `hz`
    /// admits everything.
    pub fn new(rate: u64, burst: u32, hz: u64) -> TokenBucket {
        let interval = hz.checked_div(rate).unwrap_or(0);
        TokenBucket {
            interval,
            tolerance: interval.saturating_mul(burst.saturating_sub(1) as u64),
            tat: 0,
            open: rate > 0 && burst > 0,
        }
    }

    /// Admits everything.
    pub fn unlimited() -> TokenBucket {
        TokenBucket {
            interval: 0,
            tolerance: 0,
            tat: 0,
            open: true,
        }
    }

    /// Takes a token at time `now` (monotonic per bucket); false when none is left.
    #[inline]
    pub fn allow(&mut self, now: u64) -> bool {
        let tat = self.tat.max(now);
        if !self.open || tat - now > self.tolerance {
            return false;
        }
        self.tat = tat.saturating_add(self.interval);
        true
    }
}

/// A rate for one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Packets per second.
    pub per_sec: u64,
    /// Largest burst.
    pub burst: u32,
}

impl Rate {
    /// Defaults per class for one worker (divide by the worker count for a box-wide rate).
    /// Generous for what keeps the box reachable and converging (ARP/ND, BGP/SSH, the
    /// first packets of new flows while neighbors resolve), tight for what only produces
    /// ICMP errors.
    pub fn default_for(class: ExceptionClass) -> Rate {
        let (per_sec, burst) = match class {
            ExceptionClass::Arp | ExceptionClass::Nd => (2_000, 256),
            ExceptionClass::LocalIcmp => (1_000, 100),
            ExceptionClass::Local => (20_000, 1_024),
            ExceptionClass::Unresolved => (5_000, 512),
            ExceptionClass::TtlExceeded
            | ExceptionClass::NoRoute
            | ExceptionClass::TooBig
            | ExceptionClass::Multicast
            | ExceptionClass::Other => (1_000, 100),
        };
        Rate { per_sec, burst }
    }
}

/// One worker's policers, one bucket per exception class.
#[derive(Debug, Clone)]
pub struct ExceptionPolicer {
    buckets: [TokenBucket; ExceptionClass::COUNT],
}

impl ExceptionPolicer {
    /// Buckets with `rate(class)` each; `hz` is the timestamp frequency (TSC hz).
    pub fn new(hz: u64, rate: impl Fn(ExceptionClass) -> Rate) -> ExceptionPolicer {
        ExceptionPolicer {
            buckets: ExceptionClass::ALL.map(|c| {
                let r = rate(c);
                TokenBucket::new(r.per_sec, r.burst, hz)
            }),
        }
    }

    /// With [`Rate::default_for`] every class.
    pub fn with_defaults(hz: u64) -> ExceptionPolicer {
        Self::new(hz, Rate::default_for)
    }

    /// Whether one more `class` packet may go to the kernel at time `now`.
    #[inline]
    pub fn allow(&mut self, class: ExceptionClass, now: u64) -> bool {
        self.buckets[class.index()].allow(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u64 = 1_000_000_000;

    fn admitted(b: &mut TokenBucket, from: u64, to: u64, step: u64) -> u64 {
        (from..to)
            .step_by(step as usize)
            .filter(|&t| b.allow(t))
            .count() as u64
    }

    #[test]
    fn burst_then_rate() {
        let mut b = TokenBucket::new(1_000, 10, HZ);
        // Starting late (TSC far from zero) does not grant a huge credit.
        let t0 = 5 * HZ;
        assert_eq!(admitted(&mut b, t0, t0 + 1, 1), 1);
        assert_eq!(
            (0..20).filter(|_| b.allow(t0)).count(),
            9,
            "burst of 10 in all"
        );
        // Offered 100k/s for one second: about 1000 more get through.
        let n = admitted(&mut b, t0 + 1, t0 + HZ, 10_000);
        assert!((999..=1001).contains(&n), "{n}");
        // After a quiet second the full burst is back, and not more.
        let t1 = t0 + 3 * HZ;
        assert_eq!((0..20).filter(|_| b.allow(t1)).count(), 10);
    }

    #[test]
    fn closed_and_unlimited() {
        let mut z = TokenBucket::new(0, 10, HZ);
        let mut zb = TokenBucket::new(10, 0, HZ);
        let mut u = TokenBucket::unlimited();
        let mut fast = TokenBucket::new(HZ * 2, 1, HZ);
        for t in 0..1000 {
            assert!(!z.allow(t));
            assert!(!zb.allow(t));
            assert!(u.allow(t / 10));
            assert!(fast.allow(t / 10));
        }
    }

    #[test]
    fn classes_are_independent() {
        let mut p = ExceptionPolicer::new(HZ, |c| Rate {
            per_sec: 10,
            burst: if c == ExceptionClass::Arp { 5 } else { 1 },
        });
        let arp = (0..100).filter(|_| p.allow(ExceptionClass::Arp, 0)).count();
        let icmp = (0..100)
            .filter(|_| p.allow(ExceptionClass::LocalIcmp, 0))
            .count();
        assert_eq!((arp, icmp), (5, 1));
        assert!(p.allow(ExceptionClass::Arp, HZ / 10));
        let mut d = ExceptionPolicer::with_defaults(2_600_000_000);
        assert!(d.allow(ExceptionClass::Other, 1));
    }
}
