//! Beacon detection by timing, after RITA's published method: for each
//! (source, destination) pair, how regular are the gaps between
//! connections and the sizes sent, how much of the observation window the
//! pair covers, and how even its hourly histogram is.
//!
//! Sub-scores, each in [0, 1]:
//! - `ts_score`: mean of the Bowley-skewness score `1 - |skew|` and the
//!   dispersion score `1 - MAD / median` of the inter-arrival gaps. A fixed
//!   period scores 1; a sleep drawn uniformly from 60 to 120 minutes is
//!   symmetric (skew near 0 in expectation) with a MAD of a sixth of its
//!   median, so it still scores near 0.8: regular in distribution.
//! - `ds_score`: the same two statistics on bytes sent per connection.
//! - `dur_score`: the larger of the pair's span over the observation
//!   window and the share of the window's hours in which it connected.
//! - `hist_score`: `1 - CV` of the hourly connection counts over the hours
//!   the pair spans, or, if better, the share of hours holding the two most
//!   common counts times the share of active hours (a jittered sleep
//!   alternates between one connection an hour and none: bimodal, and
//!   mostly active; a person's bursts are bimodal but mostly idle).
//!
//! `score` is the mean of the four. Pairs need [`MIN_CONNECTIONS`]; pairs
//! above [`STROBE_CONNECTIONS`] a day are strobes, reported apart.

use std::collections::HashMap;

use turncoat_core::Time;
use turncoat_core::time::{MICROS_PER_HOUR, MICROS_PER_SEC};

/// Connections a pair needs before it is scored.
pub const MIN_CONNECTIONS: usize = 8;
/// Connections a day above which a pair is a strobe, not a beacon.
pub const STROBE_CONNECTIONS: u64 = 86_400;
/// Timestamps kept per pair: memory is bounded by the number of pairs.
pub const MAX_SAMPLES: usize = 20_000;

/// Median of a sorted slice.
pub fn median(sorted: &[f64]) -> f64 {
    quantile(sorted, 0.5)
}

/// Linear-interpolation quantile of a sorted slice.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Bowley (quartile) skewness: `(Q3 + Q1 - 2 Q2) / (Q3 - Q1)`, 0 when the
/// quartiles coincide.
pub fn bowley_skewness(sorted: &[f64]) -> f64 {
    let (q1, q2, q3) = (
        quantile(sorted, 0.25),
        quantile(sorted, 0.5),
        quantile(sorted, 0.75),
    );
    if q3 - q1 == 0.0 {
        0.0
    } else {
        (q3 + q1 - 2.0 * q2) / (q3 - q1)
    }
}

/// Median absolute deviation from the median.
pub fn mad(sorted: &[f64]) -> f64 {
    let m = median(sorted);
    let mut dev: Vec<f64> = sorted.iter().map(|x| (x - m).abs()).collect();
    dev.sort_by(f64::total_cmp);
    median(&dev)
}

/// The skew and dispersion scores of a sample, averaged.
fn regularity(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let m = median(values);
    let skew = 1.0 - bowley_skewness(values).abs();
    let dispersion = if m <= 0.0 {
        if mad(values) == 0.0 { 1.0 } else { 0.0 }
    } else {
        (1.0 - mad(values) / m).max(0.0)
    };
    ((skew + dispersion) / 2.0).clamp(0.0, 1.0)
}

/// `1 - coefficient of variation`, clamped to [0, 1].
fn evenness(counts: &[f64]) -> f64 {
    if counts.is_empty() {
        return 0.0;
    }
    let mean = counts.iter().sum::<f64>() / counts.len() as f64;
    if mean == 0.0 {
        return 0.0;
    }
    let var = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / counts.len() as f64;
    (1.0 - var.sqrt() / mean).clamp(0.0, 1.0)
}

/// Sub-scores and their combination.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    pub ts: f64,
    pub ds: f64,
    pub dur: f64,
    pub hist: f64,
    pub score: f64,
    pub median_interval_s: f64,
}

/// Scores one pair from its connection times and bytes sent, within the
/// observation window `[start, end]`.
pub fn score(times: &[Time], bytes: &[u64], start: Time, end: Time) -> Option<Score> {
    if times.len() < MIN_CONNECTIONS {
        return None;
    }
    // One connection seen by two sensors (an endpoint agent and Zeek) is
    // one connection: timestamps are compared at one-second resolution.
    let mut t: Vec<i64> = times
        .iter()
        .map(|t| t.0.div_euclid(MICROS_PER_SEC) * MICROS_PER_SEC)
        .collect();
    t.sort_unstable();
    t.dedup();
    if t.len() < MIN_CONNECTIONS {
        return None;
    }
    let mut gaps: Vec<f64> = t
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / MICROS_PER_SEC as f64)
        .collect();
    let ts = regularity(&mut gaps);
    let median_interval_s = median(&gaps);
    let mut sizes: Vec<f64> = bytes.iter().map(|b| *b as f64).collect();
    let ds = if sizes.is_empty() {
        0.0
    } else {
        regularity(&mut sizes)
    };

    let window = (end.0 - start.0).max(1) as f64;
    let span = (t[t.len() - 1] - t[0]) as f64 / window;
    let first_hour = start.0.div_euclid(MICROS_PER_HOUR);
    let hours = ((end.0.div_euclid(MICROS_PER_HOUR) - first_hour) + 1).max(1) as usize;
    let mut hourly = vec![0f64; hours];
    for x in &t {
        let h = (x.div_euclid(MICROS_PER_HOUR) - first_hour).clamp(0, hours as i64 - 1) as usize;
        hourly[h] += 1.0;
    }
    let active = hourly.iter().filter(|c| **c > 0.0).count() as f64 / hours as f64;
    let dur = span.max(active).clamp(0.0, 1.0);

    // Histogram over the hours the pair spans.
    let (a, b) = (
        (t[0].div_euclid(MICROS_PER_HOUR) - first_hour) as usize,
        (t[t.len() - 1].div_euclid(MICROS_PER_HOUR) - first_hour) as usize,
    );
    let spanned = &hourly[a.min(hours - 1)..=b.min(hours - 1)];
    let one_mode = evenness(spanned);
    let two_modes = {
        // The two most frequent counts; score the hours holding them.
        let mut freq: HashMap<u64, usize> = HashMap::new();
        for c in spanned {
            *freq.entry(*c as u64).or_default() += 1;
        }
        let mut modes: Vec<(usize, u64)> = freq.into_iter().map(|(c, n)| (n, c)).collect();
        modes.sort_unstable_by(|x, y| y.cmp(x));
        let covered: usize = modes.iter().take(2).map(|m| m.0).sum();
        // Idle hours may be one of the modes (a sleep longer than an hour
        // leaves some), but a pair idle most of its span is not regular.
        let active =
            spanned.iter().filter(|c| **c > 0.0).count() as f64 / spanned.len().max(1) as f64;
        covered as f64 / spanned.len().max(1) as f64 * active
    };
    let hist = one_mode.max(two_modes);
    let score = ((ts + ds + dur + hist) / 4.0).clamp(0.0, 1.0);
    Some(Score {
        ts,
        ds,
        dur,
        hist,
        score,
        median_interval_s,
    })
}

/// Connections of one pair, bounded in memory.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub times: Vec<Time>,
    pub bytes: Vec<u64>,
    /// Connections seen, including those beyond the kept samples.
    pub count: u64,
    pub first: Option<Time>,
    pub last: Option<Time>,
    /// Longest single connection, in seconds.
    pub longest_s: f64,
}

impl Series {
    pub fn add(&mut self, time: Time, bytes: Option<u64>, duration_s: Option<f64>) {
        self.count += 1;
        self.first = Some(self.first.map_or(time, |f| f.min(time)));
        self.last = Some(self.last.map_or(time, |l| l.max(time)));
        self.longest_s = self.longest_s.max(duration_s.unwrap_or(0.0));
        if self.times.len() < MAX_SAMPLES {
            self.times.push(time);
            if let Some(b) = bytes {
                self.bytes.push(b);
            }
        }
    }

    pub fn merge(&mut self, other: &Series) {
        self.count += other.count;
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = match (self.last, other.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.longest_s = self.longest_s.max(other.longest_s);
        let room = MAX_SAMPLES.saturating_sub(self.times.len());
        self.times.extend(other.times.iter().take(room));
        self.bytes.extend(other.bytes.iter().take(room));
    }

    /// Whether the pair connects more often than a beacon plausibly does.
    pub fn is_strobe(&self) -> bool {
        let (Some(f), Some(l)) = (self.first, self.last) else {
            return false;
        };
        let days = ((l.0 - f.0) as f64 / (24.0 * MICROS_PER_HOUR as f64)).max(1.0);
        self.count as f64 / days > STROBE_CONNECTIONS as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_match_hand_computation() {
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(median(&v), 3.0);
        assert_eq!(quantile(&v, 0.25), 2.0);
        assert_eq!(quantile(&v, 0.75), 4.0);
        // (4 + 2 - 2*3) / (4 - 2) = 0
        assert_eq!(bowley_skewness(&v), 0.0);
        let skewed = [1.0, 1.0, 2.0, 8.0, 9.0];
        // Q1 1, Q2 2, Q3 8: (8 + 1 - 4) / 7
        assert!((bowley_skewness(&skewed) - 5.0 / 7.0).abs() < 1e-12);
        // |x - 3| = 2 1 0 1 7 → sorted 0 1 1 2 7 → median 1
        assert_eq!(mad(&v), 1.0);
        assert_eq!(evenness(&[2.0, 2.0, 2.0]), 1.0);
        assert_eq!(evenness(&[0.0, 0.0]), 0.0);
        assert!((evenness(&[1.0, 3.0]) - 0.5).abs() < 1e-12, "mean 2, sd 1");
    }

    fn times(start: i64, gaps: impl Iterator<Item = i64>) -> Vec<Time> {
        let mut t = start;
        let mut out = vec![Time(t)];
        for g in gaps {
            t += g * MICROS_PER_SEC;
            out.push(Time(t));
        }
        out
    }

    #[test]
    fn fixed_and_jittered_periods_score_high_random_traffic_low() {
        let day = 24 * MICROS_PER_HOUR;
        let (start, end) = (Time(0), Time(7 * day));
        let fixed = times(0, std::iter::repeat_n(900, 7 * 96 - 1));
        let s = score(&fixed, &vec![1000; fixed.len()], start, end).unwrap();
        assert!(s.ts > 0.99 && s.ds > 0.99 && s.score > 0.95, "{s:?}");
        assert_eq!(s.median_interval_s, 900.0);

        // 60-120 minute sleeps drawn uniformly (a fixed pseudo-random sequence).
        let mut x: u64 = 12345;
        let jitter: Vec<i64> = (0..150)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                3600 + ((x >> 33) % 3601) as i64
            })
            .collect();
        let jittered = times(0, jitter.into_iter());
        let sizes: Vec<u64> = (0..jittered.len() as u64)
            .map(|i| 900 + (i * 37) % 300)
            .collect();
        let s = score(&jittered, &sizes, start, end).unwrap();
        assert!(
            s.ts > 0.7,
            "jittered sleeps are regular in distribution: {s:?}"
        );
        assert!(s.score > 0.75, "{s:?}");

        // Bursty human traffic: many quick requests, then hours of nothing.
        let mut gaps = Vec::new();
        for d in 0..7 {
            for i in 0..40 {
                gaps.push(if i == 0 && d > 0 {
                    14 * 3600
                } else {
                    5 + (i * 13) % 70
                });
            }
        }
        let human = times(8 * 3600 * MICROS_PER_SEC, gaps.into_iter());
        let sizes: Vec<u64> = (0..human.len() as u64)
            .map(|i| 200 + (i * 7919) % 50_000)
            .collect();
        let h = score(&human, &sizes, start, end).unwrap();
        assert!(h.score < s.score - 0.2, "human {h:?} vs beacon {s:?}");
        assert!(
            score(&fixed[..5], &[], start, end).is_none(),
            "too few connections"
        );
    }

    #[test]
    fn series_is_bounded_and_strobes_are_told_apart() {
        let mut s = Series::default();
        for i in 0..(MAX_SAMPLES as i64 + 100) {
            s.add(Time(i * 100_000), Some(10), Some(0.1));
        }
        assert_eq!(s.times.len(), MAX_SAMPLES);
        assert_eq!(s.count, MAX_SAMPLES as u64 + 100);
        let mut strobe = Series::default();
        for i in 0..200_000 {
            strobe.add(Time(i * 100_000), None, None);
        }
        assert!(strobe.is_strobe() && !Series::default().is_strobe());
    }
}
