//! Choosing the next token from the logits: greedy, or temperature with nucleus (top-p)
//! sampling, seeded so that a request's seed gives the same reply.
//!
//! Nucleus sampling needs the most likely tokens in order until their mass reaches `top_p`.
//! Sorting the whole vocabulary (49,152 tokens for SmolLM2) for that costs milliseconds a
//! token; the nucleus is nearly always a few dozen tokens, so the most likely
//! [`CANDIDATES`] are selected in linear time and only they are sorted. Where their mass
//! falls short of `top_p`, everything is sorted: the result is exactly nucleus sampling
//! either way.

/// Tokens sorted first in the hope that they hold the nucleus.
const CANDIDATES: usize = 64;

/// A small, seeded generator (SplitMix64): the same seed draws the same numbers.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub struct Sampler {
    rng: SplitMix,
    /// `None`: greedy.
    temperature: Option<f32>,
    top_p: f32,
    repeat_penalty: f32,
}

impl Sampler {
    /// `temperature <= 0` is greedy; `top_p >= 1` samples from the whole distribution;
    /// `repeat_penalty` 1 is off.
    pub fn new(seed: u64, temperature: f32, top_p: f32, repeat_penalty: f32) -> Self {
        Self {
            rng: SplitMix(seed),
            temperature: (temperature > 0.0).then_some(temperature),
            top_p,
            repeat_penalty,
        }
    }

    /// The next token. `recent` are the tokens the repeat penalty applies to.
    pub fn sample(&mut self, mut logits: Vec<f32>, recent: &[u32]) -> u32 {
        if self.repeat_penalty != 1.0 {
            penalize(&mut logits, recent, self.repeat_penalty);
        }
        let Some(temperature) = self.temperature else {
            return argmax(&logits);
        };
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut probs: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, l)| (i as u32, ((l - max) / temperature).exp()))
            .collect();
        let total: f32 = probs.iter().map(|(_, p)| p).sum();
        if !(total.is_finite() && total > 0.0) {
            return argmax(&logits);
        }
        let (nucleus, mass): (&[(u32, f32)], f32) = if self.top_p < 1.0 {
            let nucleus = nucleus(&mut probs, self.top_p.max(0.0) * total);
            (nucleus, nucleus.iter().map(|(_, p)| p).sum())
        } else {
            (&probs, total)
        };
        let mut draw = self.rng.next_f64() as f32 * mass;
        for (token, p) in nucleus.iter() {
            if draw < *p {
                return *token;
            }
            draw -= p;
        }
        nucleus.last().map_or(0, |(t, _)| *t)
    }
}

/// The shortest run of most likely tokens whose (unnormalized) mass reaches `wanted`, most
/// likely first (all of them where rounding keeps the sum just short of `wanted`).
fn nucleus(probs: &mut [(u32, f32)], wanted: f32) -> &[(u32, f32)] {
    let by_mass = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let candidates = CANDIDATES.min(probs.len());
    if candidates < probs.len() {
        probs.select_nth_unstable_by(candidates - 1, by_mass);
    }
    probs[..candidates].sort_unstable_by(by_mass);
    if let Some(end) = prefix_reaching(&probs[..candidates], wanted) {
        return &probs[..end];
    }
    probs.sort_unstable_by(by_mass);
    let end = prefix_reaching(probs, wanted).unwrap_or(probs.len());
    &probs[..end]
}

/// How many of the first `probs` it takes for their mass to reach `wanted`.
fn prefix_reaching(probs: &[(u32, f32)], wanted: f32) -> Option<usize> {
    let mut sum = 0f32;
    for (i, (_, p)) in probs.iter().enumerate() {
        sum += p;
        if sum >= wanted {
            return Some(i + 1);
        }
    }
    None
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, l) in logits.iter().enumerate() {
        if *l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Make each token of `recent` less likely (once, however often it occurs): positive
/// logits are divided by `penalty`, negative ones multiplied.
fn penalize(logits: &mut [f32], recent: &[u32], penalty: f32) {
    let mut seen: Vec<u32> = recent.to_vec();
    seen.sort_unstable();
    seen.dedup();
    for token in seen {
        if let Some(l) = logits.get_mut(token as usize) {
            *l = if *l >= 0.0 {
                *l / penalty
            } else {
                *l * penalty
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sorted_nucleus(probs: &[(u32, f32)], wanted: f32) -> Vec<u32> {
        let mut all = probs.to_vec();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let end = prefix_reaching(&all, wanted).unwrap_or(all.len());
        all[..end].iter().map(|(t, _)| *t).collect()
    }

    #[test]
    fn greedy_takes_the_largest_logit_after_the_penalty() {
        let mut s = Sampler::new(1, 0.0, 1.0, 2.0);
        assert_eq!(s.sample(vec![0.0, 3.0, 2.0], &[]), 1);
        // 3 / 2 = 1.5 < 2: the repeated token loses.
        assert_eq!(s.sample(vec![0.0, 3.0, 2.0], &[1, 1]), 2);
        // Negative logits are pushed further down, not up.
        assert_eq!(s.sample(vec![-1.0, -1.5, -3.0], &[0]), 1);
    }

    #[test]
    fn the_same_seed_draws_the_same_tokens() {
        let logits: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32 / 20.0).collect();
        let draw = |seed| {
            let mut s = Sampler::new(seed, 0.8, 0.9, 1.0);
            (0..20)
                .map(|_| s.sample(logits.clone(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn sampling_follows_the_probabilities() {
        // Probabilities 0.5, 0.3, 0.2 (as logits); 20,000 draws.
        let logits: Vec<f32> = [0.5f32, 0.3, 0.2].iter().map(|p| p.ln()).collect();
        let mut s = Sampler::new(3, 1.0, 1.0, 1.0);
        let mut counts = [0usize; 3];
        for _ in 0..20_000 {
            counts[s.sample(logits.clone(), &[]) as usize] += 1;
        }
        for (c, p) in counts.iter().zip([0.5, 0.3, 0.2]) {
            assert!((*c as f64 / 20_000.0 - p).abs() < 0.015, "{counts:?}");
        }
        // top_p 0.6 keeps the two most likely only.
        let mut s = Sampler::new(3, 1.0, 0.6, 1.0);
        assert!((0..2_000).all(|_| s.sample(logits.clone(), &[]) != 2));
    }

    proptest! {
        /// The shortcut gives the same nucleus as sorting everything, whether the nucleus
        /// fits in the candidates (peaked) or not (flat).
        #[test]
        fn the_nucleus_is_the_same_as_a_full_sort(
            masses in prop::collection::vec(0f32..1.0, 1..400),
            peak in 0usize..400,
            top_p in 0.05f32..0.999,
        ) {
            let mut probs: Vec<(u32, f32)> =
                masses.iter().enumerate().map(|(i, p)| (i as u32, *p)).collect();
            if let Some(p) = probs.get_mut(peak) {
                p.1 += 50.0;
            }
            let total: f32 = probs.iter().map(|(_, p)| p).sum();
            let want = sorted_nucleus(&probs, top_p * total);
            let got: Vec<u32> = nucleus(&mut probs, top_p * total).iter().map(|(t, _)| *t).collect();
            prop_assert_eq!(got, want);
        }
    }
}
