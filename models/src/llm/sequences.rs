//! The live sequences: a few KV caches, so that several conversations (calls of the same
//! persona, or of different ones) each continue from their own cached start instead of
//! evicting one another's.
//!
//! A prompt goes to the cache that shares the longest start with it. When continuing there
//! would throw away more than that cache's last reply (another conversation's turns), the
//! shared start is copied into a free cache instead (a fork: ~46 KB a token, a few ms for a
//! persona), and the other conversation keeps its own. With every cache taken, the least
//! recently used one is given up.

use super::llama::{KvCache, Llama, shared_start};

/// Where a prompt runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    /// Continue in this cache; what it holds past the shared start is dropped.
    Continue(usize),
    /// Copy the first `len` tokens of cache `from` into `into`, and continue there.
    Fork { from: usize, len: usize, into: Slot },
    /// Nothing is shared with any cache: start empty in `into`.
    Empty(Slot),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    New,
    Reuse(usize),
}

/// What the choice looks at for each cache.
#[derive(Debug, Clone, Copy)]
struct Held<'a> {
    tokens: &'a [u32],
    last_prompt: usize,
    used: u64,
}

fn choose(held: &[Held], prompt: &[u32], limit: usize) -> Choice {
    let best = held
        .iter()
        .enumerate()
        .map(|(i, h)| (i, shared_start(h.tokens, prompt), h.used))
        .max_by_key(|&(_, len, used)| (len, used));
    // The least recently used cache other than `keep`, or a new one while there is room.
    let free = |keep: Option<usize>| match held.len() < limit {
        true => Some(Slot::New),
        false => held
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != keep)
            .min_by_key(|(_, h)| h.used)
            .map(|(i, _)| Slot::Reuse(i)),
    };
    match best {
        Some((i, 0, _)) => Choice::Empty(free(None).unwrap_or(Slot::Reuse(i))),
        Some((i, len, _)) => {
            let h = held[i];
            // Only the tokens generated after its last prompt would go: that conversation
            // is this one, moving on (or the same prompt asked again).
            if len == h.tokens.len() || len >= h.last_prompt {
                return Choice::Continue(i);
            }
            match free(Some(i)) {
                Some(into) => Choice::Fork { from: i, len, into },
                None => Choice::Continue(i),
            }
        }
        None => Choice::Empty(Slot::New),
    }
}

/// The live caches and when each was last used.
pub(super) struct Sequences {
    caches: Vec<(KvCache, u64)>,
    limit: usize,
    clock: u64,
}

impl Sequences {
    /// At most `limit` caches (at least one).
    pub(super) fn new(limit: usize) -> Self {
        Self {
            caches: Vec::new(),
            limit: limit.max(1),
            clock: 0,
        }
    }

    /// The cache to run `prompt` on, prepared as [`choose`] says.
    pub(super) fn take(&mut self, llama: &Llama, prompt: &[u32]) -> &mut KvCache {
        let held: Vec<Held> = self
            .caches
            .iter()
            .map(|(c, used)| Held {
                tokens: c.tokens(),
                last_prompt: c.last_prompt(),
                used: *used,
            })
            .collect();
        let choice = choose(&held, prompt, self.limit);
        let slot = |slot: Slot, caches: &mut Vec<(KvCache, u64)>| match slot {
            Slot::New => {
                caches.push((llama.new_cache(), 0));
                caches.len() - 1
            }
            Slot::Reuse(i) => i,
        };
        let index = match choice {
            Choice::Continue(i) => i,
            Choice::Empty(into) => {
                let i = slot(into, &mut self.caches);
                self.caches[i].0.clear();
                i
            }
            Choice::Fork { from, len, into } => {
                let i = slot(into, &mut self.caches);
                // `from != i`: split the borrow to read one cache while writing the other.
                let (src, dst) = match from < i {
                    true => {
                        let (a, b) = self.caches.split_at_mut(i);
                        (&a[from].0, &mut b[0].0)
                    }
                    false => {
                        let (a, b) = self.caches.split_at_mut(from);
                        (&b[0].0, &mut a[i].0)
                    }
                };
                llama.fork(src, dst, len);
                i
            }
        };
        self.clock += 1;
        let (cache, used) = &mut self.caches[index];
        *used = self.clock;
        cache
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn held(tokens: &[u32], last_prompt: usize, used: u64) -> Held<'_> {
        Held {
            tokens,
            last_prompt,
            used,
        }
    }

    #[test]
    fn the_first_prompt_starts_a_cache() {
        assert_eq!(choose(&[], &[1, 2, 3], 4), Choice::Empty(Slot::New));
    }

    #[test]
    fn a_conversation_moving_on_continues_in_its_cache() {
        // Prompt 1..=4 was run, then 5 and 6 were generated; the next turn repeats the
        // prompt and the reply (re-tokenized: 5, 7) and adds a question.
        let a = [1, 2, 3, 4, 5, 6];
        assert_eq!(
            choose(&[held(&a, 4, 1)], &[1, 2, 3, 4, 5, 7, 8], 4),
            Choice::Continue(0)
        );
        // The same prompt again.
        assert_eq!(
            choose(&[held(&a, 4, 1)], &[1, 2, 3, 4], 4),
            Choice::Continue(0)
        );
    }

    #[test]
    fn another_conversation_of_the_same_persona_forks_the_persona() {
        let a = [1, 2, 3, 4, 5, 6];
        assert_eq!(
            choose(&[held(&a, 4, 1)], &[1, 2, 9], 4),
            Choice::Fork {
                from: 0,
                len: 2,
                into: Slot::New
            }
        );
    }

    #[test]
    fn with_every_cache_taken_the_least_recently_used_other_one_is_given_up() {
        let (a, b, c) = ([1, 2, 3, 4], [1, 2, 5, 6], [7, 8]);
        let caches = [held(&a, 4, 5), held(&b, 4, 3), held(&c, 2, 9)];
        // Shares most with `a`, which is kept; `b` is the oldest.
        assert_eq!(
            choose(&caches, &[1, 2, 3, 9], 3),
            Choice::Fork {
                from: 0,
                len: 3,
                into: Slot::Reuse(1)
            }
        );
        // Nothing shared: the oldest is emptied.
        assert_eq!(choose(&caches, &[4], 3), Choice::Empty(Slot::Reuse(1)));
    }

    #[test]
    fn one_cache_behaves_as_a_single_sequence() {
        let a = [1, 2, 3, 4];
        assert_eq!(choose(&[held(&a, 4, 1)], &[1, 9], 1), Choice::Continue(0));
        assert_eq!(
            choose(&[held(&a, 4, 1)], &[9], 1),
            Choice::Empty(Slot::Reuse(0))
        );
    }

    proptest! {
        /// The prompt always starts from the longest start any cache shares with it, stays
        /// within the limit, and only ever gives up another conversation's turns for a
        /// cache that is least recently used.
        #[test]
        fn choices_reuse_the_longest_start_within_the_limit(
            caches in prop::collection::vec(
                (prop::collection::vec(0u32..3, 0..8), 0usize..8), 0..5),
            prompt in prop::collection::vec(0u32..3, 1..8),
            limit in 1usize..5,
        ) {
            let caches: Vec<_> = caches.into_iter().take(limit).collect();
            let held: Vec<Held> = caches
                .iter()
                .enumerate()
                .map(|(i, (t, last))| held(t, (*last).min(t.len()), i as u64 * 7 % 5))
                .collect();
            let longest = held.iter().map(|h| shared_start(h.tokens, &prompt)).max().unwrap_or(0);
            let room = held.len() < limit;
            let oldest_other = |keep: Option<usize>| {
                held.iter().enumerate().filter(|(i, _)| Some(*i) != keep)
                    .map(|(_, h)| h.used).min()
            };
            match choose(&held, &prompt, limit) {
                Choice::Continue(i) => {
                    prop_assert_eq!(shared_start(held[i].tokens, &prompt), longest);
                    prop_assert!(longest > 0);
                }
                Choice::Fork { from, len, into } => {
                    prop_assert_eq!(len, longest);
                    prop_assert_eq!(shared_start(held[from].tokens, &prompt), longest);
                    prop_assert!(len < held[from].tokens.len());
                    match into {
                        Slot::New => prop_assert!(room),
                        Slot::Reuse(j) => {
                            prop_assert!(!room && j != from);
                            prop_assert_eq!(Some(held[j].used), oldest_other(Some(from)));
                        }
                    }
                }
                Choice::Empty(into) => {
                    prop_assert_eq!(longest, 0);
                    match into {
                        Slot::New => prop_assert!(room),
                        Slot::Reuse(j) => {
                            prop_assert!(!room);
                            prop_assert_eq!(Some(held[j].used), oldest_other(None));
                        }
                    }
                }
            }
        }
    }
}
