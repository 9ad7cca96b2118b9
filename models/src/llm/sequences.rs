//! The live sequences: a few KV caches, so that several conversations (calls of the same
//! persona, or of different ones) each continue from their own cached start instead of
//! evicting one another's.
//!
//! A request that names its conversation continues in that conversation's cache, whatever
//! changed in its prompt since (the latest message carries context looked up anew each
//! turn, so a turn's prompt is not an extension of the last one). Otherwise a prompt goes to
//! the cache that shares the longest start with it. When continuing there would throw away
//! more than that cache's last reply, or the cache belongs to another named conversation,
//! the shared start is copied into a free cache instead (a fork: ~46 KB a token, a few ms for
//! a persona), and the other conversation keeps its own. With every cache taken, the least
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
    /// The conversation that last ran in it, when that request named one.
    owner: Option<&'a str>,
}

fn choose(held: &[Held], prompt: &[u32], limit: usize, owner: Option<&str>) -> Choice {
    if let Some(own) = owner.and_then(|o| held.iter().position(|h| h.owner == Some(o))) {
        return Choice::Continue(own);
    }
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
            // is this one, moving on (or the same prompt asked again). Not so when the cache
            // is another named conversation's.
            let moving_on = len == h.tokens.len() || len >= h.last_prompt;
            if moving_on && h.owner.is_none() {
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

/// One live cache: when it was last used, and by which named conversation.
struct Entry {
    cache: KvCache,
    used: u64,
    owner: Option<String>,
}

/// The live caches.
pub(super) struct Sequences {
    caches: Vec<Entry>,
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

    /// The cache to run `prompt` on for `owner`'s conversation (if named), prepared as
    /// [`choose`] says; it belongs to that conversation from now on.
    pub(super) fn take(
        &mut self,
        llama: &Llama,
        prompt: &[u32],
        owner: Option<&str>,
    ) -> &mut KvCache {
        let held: Vec<Held> = self
            .caches
            .iter()
            .map(|e| Held {
                tokens: e.cache.tokens(),
                last_prompt: e.cache.last_prompt(),
                used: e.used,
                owner: e.owner.as_deref(),
            })
            .collect();
        let choice = choose(&held, prompt, self.limit, owner);
        let slot = |slot: Slot, caches: &mut Vec<Entry>| match slot {
            Slot::New => {
                caches.push(Entry {
                    cache: llama.new_cache(),
                    used: 0,
                    owner: None,
                });
                caches.len() - 1
            }
            Slot::Reuse(i) => i,
        };
        let index = match choice {
            Choice::Continue(i) => i,
            Choice::Empty(into) => {
                let i = slot(into, &mut self.caches);
                self.caches[i].cache.clear();
                i
            }
            Choice::Fork { from, len, into } => {
                let i = slot(into, &mut self.caches);
                // `from != i`: split the borrow to read one cache while writing the other.
                let (src, dst) = match from < i {
                    true => {
                        let (a, b) = self.caches.split_at_mut(i);
                        (&a[from].cache, &mut b[0].cache)
                    }
                    false => {
                        let (a, b) = self.caches.split_at_mut(from);
                        (&b[0].cache, &mut a[i].cache)
                    }
                };
                llama.fork(src, dst, len);
                i
            }
        };
        self.clock += 1;
        let entry = &mut self.caches[index];
        entry.used = self.clock;
        entry.owner = owner.map(str::to_owned);
        &mut entry.cache
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
            owner: None,
        }
    }

    fn owned<'a>(tokens: &'a [u32], last_prompt: usize, used: u64, owner: &'a str) -> Held<'a> {
        Held {
            owner: Some(owner),
            ..held(tokens, last_prompt, used)
        }
    }

    #[test]
    fn the_first_prompt_starts_a_cache() {
        assert_eq!(choose(&[], &[1, 2, 3], 4, None), Choice::Empty(Slot::New));
    }

    #[test]
    fn a_conversation_moving_on_continues_in_its_cache() {
        // Prompt 1..=4 was run, then 5 and 6 were generated; the next turn repeats the
        // prompt and the reply (re-tokenized: 5, 7) and adds a question.
        let a = [1, 2, 3, 4, 5, 6];
        assert_eq!(
            choose(&[held(&a, 4, 1)], &[1, 2, 3, 4, 5, 7, 8], 4, None),
            Choice::Continue(0)
        );
        // The same prompt again.
        assert_eq!(
            choose(&[held(&a, 4, 1)], &[1, 2, 3, 4], 4, None),
            Choice::Continue(0)
        );
    }

    #[test]
    fn another_conversation_of_the_same_persona_forks_the_persona() {
        let a = [1, 2, 3, 4, 5, 6];
        assert_eq!(
            choose(&[held(&a, 4, 1)], &[1, 2, 9], 4, None),
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
            choose(&caches, &[1, 2, 3, 9], 3, None),
            Choice::Fork {
                from: 0,
                len: 3,
                into: Slot::Reuse(1)
            }
        );
        // Nothing shared: the oldest is emptied.
        assert_eq!(
            choose(&caches, &[4], 3, None),
            Choice::Empty(Slot::Reuse(1))
        );
    }

    #[test]
    fn one_cache_behaves_as_a_single_sequence() {
        let a = [1, 2, 3, 4];
        assert_eq!(
            choose(&[held(&a, 4, 1)], &[1, 9], 1, None),
            Choice::Continue(0)
        );
        assert_eq!(
            choose(&[held(&a, 4, 1)], &[9], 1, None),
            Choice::Empty(Slot::Reuse(0))
        );
    }

    #[test]
    fn a_named_conversation_continues_in_its_own_cache_whatever_its_prompt() {
        let (a, b) = ([1, 2, 3, 4, 5], [1, 2, 6, 7]);
        let caches = [owned(&a, 4, 1, "call-a"), owned(&b, 4, 2, "call-b")];
        // Its question changed (the context before it is gone): less than its last prompt
        // is shared, yet this is the same conversation.
        assert_eq!(
            choose(&caches, &[1, 2, 3, 9], 2, Some("call-a")),
            Choice::Continue(0)
        );
        // Even when another conversation's cache shares more.
        assert_eq!(
            choose(&caches, &[1, 2, 6, 7, 8], 2, Some("call-a")),
            Choice::Continue(0)
        );
    }

    #[test]
    fn another_named_conversation_is_forked_not_continued() {
        let b = [1, 2, 3];
        let caches = [owned(&b, 3, 1, "call-b")];
        let fork = Choice::Fork {
            from: 0,
            len: 3,
            into: Slot::New,
        };
        // Its whole cache starts this prompt, but it is call-b's.
        assert_eq!(choose(&caches, &[1, 2, 3, 4], 2, Some("call-a")), fork);
        assert_eq!(choose(&caches, &[1, 2, 3, 4], 2, None), fork);
        // A single cache is shared whoever owns it.
        assert_eq!(
            choose(&caches, &[1, 2, 3, 4], 1, Some("call-a")),
            Choice::Continue(0)
        );
    }

    proptest! {
        /// A named conversation continues in its own cache. Otherwise the prompt starts from
        /// the longest start any cache shares with it, stays within the limit, continues in
        /// another named conversation's cache only when it is the one cache allowed, and only
        /// ever gives up another conversation's turns for a cache that is least recently used.
        #[test]
        fn choices_reuse_the_longest_start_within_the_limit(
            caches in prop::collection::vec(
                (prop::collection::vec(0u32..3, 0..8), 0usize..8, any::<bool>()), 0..5),
            prompt in prop::collection::vec(0u32..3, 1..8),
            limit in 1usize..5,
            asker in prop::option::of(0usize..6),
        ) {
            const NAMES: [&str; 6] = ["c0", "c1", "c2", "c3", "c4", "c5"];
            let caches: Vec<_> = caches.into_iter().take(limit).collect();
            let held: Vec<Held> = caches
                .iter()
                .enumerate()
                .map(|(i, (t, last, named))| Held {
                    owner: named.then_some(NAMES[i]),
                    ..held(t, (*last).min(t.len()), i as u64 * 7 % 5)
                })
                .collect();
            let asker = asker.map(|i| NAMES[i]);
            let longest = held.iter().map(|h| shared_start(h.tokens, &prompt)).max().unwrap_or(0);
            let room = held.len() < limit;
            let oldest_other = |keep: Option<usize>| {
                held.iter().enumerate().filter(|(i, _)| Some(*i) != keep)
                    .map(|(_, h)| h.used).min()
            };
            let own = held.iter().position(|h| asker.is_some() && h.owner == asker);
            match choose(&held, &prompt, limit, asker) {
                Choice::Continue(i) if own.is_some() => prop_assert_eq!(Some(i), own),
                choice => {
                    prop_assert!(own.is_none(), "{:?} instead of its own cache", choice);
                    match choice {
                        Choice::Continue(i) => {
                            prop_assert_eq!(shared_start(held[i].tokens, &prompt), longest);
                            prop_assert!(longest > 0);
                            prop_assert!(held[i].owner.is_none() || (held.len() == 1 && !room));
                        }
                        Choice::Fork { from, len, into } => {
                            prop_assert_eq!(len, longest);
                            prop_assert_eq!(shared_start(held[from].tokens, &prompt), longest);
                            prop_assert!(len < held[from].tokens.len() || held[from].owner.is_some());
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
    }
}
