//! Admission: which candidates may receive a campaign, decided for all candidates at once.
//!
//! The rules are those of [`ExclusionReason::ALL`], in that order; the first that applies
//! counts. Checking them one candidate at a time through a hash set of the LINE users seen
//! and a hash map of the send history costs two cache misses per candidate, which at a million
//! candidates was half of planning. Instead the candidates' LINE users are hashed once, grouped
//! by hash (bucketed, then sorted within buckets, so every step walks memory in order) and
//! merged with the history sorted the same way. Pure per-candidate work (the hashes, the holdout
//! check) runs on two threads for large audiences; the verdicts do not depend on it.

use std::hash::Hasher as _;

use chrono::{DateTime, Utc};

use super::planner::{Campaign, Contact, ExclusionReason};
use super::policy::{DeliveryPolicy, FrequencyCap, Holdout, SendHistory};
use super::split::{FastHasher, HoldoutHasher};
use crate::LineUserId;

/// A candidate that receives the campaign (any other verdict is an [`ExclusionReason`] as `u8`).
pub(super) const ADMITTED: u8 = u8::MAX;
/// Passed the checks before de-duplication; not decided yet.
const PENDING: u8 = u8::MAX - 1;
/// At the frequency cap, unless held out (the holdout is checked first).
const CAPPED: u8 = u8::MAX - 2;

/// Candidates from which work is split over two threads.
pub(super) const PARALLEL_FROM: usize = 50_000;

/// The delivery policy as it applies to one planning run: when the batches become due, and
/// which contacts may receive them.
pub(super) struct Gate<'a> {
    campaign: &'a Campaign,
    history: &'a SendHistory,
    /// The campaign's schedule, or the planning time if later.
    pub(super) send_at: DateTime<Utc>,
    /// `send_at` moved past quiet hours.
    pub(super) not_before: DateTime<Utc>,
    /// The frequency cap, when it can exclude anyone.
    cap: Option<FrequencyCap>,
    /// The holdout, when it holds anyone out.
    holdout: Option<&'a Holdout>,
    /// Candidates from which work is split over two threads.
    pub(super) parallel_from: usize,
}

impl<'a> Gate<'a> {
    pub(super) fn new(
        policy: &'a DeliveryPolicy,
        history: &'a SendHistory,
        campaign: &'a Campaign,
        now: DateTime<Utc>,
    ) -> Self {
        let send_at = campaign.send_at_or(now);
        Self {
            campaign,
            history,
            send_at,
            not_before: policy.quiet_hours.map_or(send_at, |q| q.defer(send_at)),
            // Without history only a cap of 0 excludes anyone: skip the per-contact lookup.
            cap: policy.frequency_cap.filter(|c| !history.is_empty() || c.max_sends() == 0),
            holdout: policy.holdout.as_ref().filter(|h| h.share_basis_points() > 0),
            parallel_from: PARALLEL_FROM,
        }
    }

    /// Each contact's verdict: [`ADMITTED`] or the first [`ExclusionReason`] (as `u8`) that
    /// applies, checked in the order of [`ExclusionReason::ALL`].
    pub(super) fn admit(&self, contacts: &[Contact]) -> Vec<u8> {
        let (mut verdicts, keys) = self.first_checks(contacts);
        let sorted = by_hash(keys);
        self.duplicates_and_cap(contacts, &sorted, &mut verdicts);
        drop(sorted);
        self.holdout(contacts, &mut verdicts);
        verdicts
    }

    /// Not linked, not following, no consent, excluded: the verdicts so far, and (hash of the
    /// LINE user, index) of every contact still [`PENDING`].
    fn first_checks(&self, contacts: &[Contact]) -> (Vec<u8>, Vec<(u64, usize)>) {
        let check = |(i, contact): (usize, &Contact), verdicts: &mut Vec<u8>, keys: &mut Vec<_>| {
            let verdict = self.first_check(contact);
            if verdict == PENDING
                && let Some(user) = &contact.line_user
            {
                keys.push((user_hash(user), i));
            }
            verdicts.push(verdict);
        };
        let run = |offset: usize, part: &[Contact]| {
            let mut verdicts = Vec::with_capacity(part.len());
            let mut keys = Vec::with_capacity(part.len());
            for (i, c) in part.iter().enumerate() {
                check((offset + i, c), &mut verdicts, &mut keys);
            }
            (verdicts, keys)
        };
        if contacts.len() < self.parallel_from {
            return run(0, contacts);
        }
        let (left, right) = contacts.split_at(contacts.len() / 2);
        let ((mut verdicts, mut keys), (v2, k2)) = std::thread::scope(|s| {
            let second = s.spawn(|| run(left.len(), right));
            let first = run(0, left);
            (first, second.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
        });
        verdicts.extend_from_slice(&v2);
        keys.extend_from_slice(&k2);
        (verdicts, keys)
    }

    fn first_check(&self, contact: &Contact) -> u8 {
        if contact.line_user.is_none() {
            return ExclusionReason::NotLinked as u8;
        }
        if !contact.following {
            return ExclusionReason::NotFollowing as u8;
        }
        if !contact.consent {
            return ExclusionReason::NoConsent as u8;
        }
        if self.campaign.is_excluded(&contact.customer) {
            return ExclusionReason::Excluded as u8;
        }
        PENDING
    }

    /// Marks every contact whose LINE user an earlier pending contact has, then the first
    /// contacts of users at the frequency cap ([`CAPPED`]). `sorted` is sorted by (hash, index).
    fn duplicates_and_cap(
        &self,
        contacts: &[Contact],
        sorted: &[(u64, usize)],
        verdicts: &mut [u8],
    ) {
        let user = |i: usize| contacts[i].line_user.as_ref();
        let history = self.cap.map(|cap| capped_history(cap, self.history)).unwrap_or_default();
        let cap_all =
            self.cap.is_some_and(|c| c.window() > chrono::TimeDelta::zero() && c.max_sends() == 0);
        let mut h = 0;
        let mut start = 0;
        while start < sorted.len() {
            let hash = sorted[start].0;
            let end = start + sorted[start..].iter().take_while(|k| k.0 == hash).count();
            while h < history.len() && history[h].0 < hash {
                h += 1;
            }
            let same_hash = history[h..].iter().take_while(|e| e.0 == hash);
            for (j, &(_, i)) in sorted[start..end].iter().enumerate() {
                // Indices ascend within a group: an earlier equal user means a duplicate.
                if sorted[start..start + j].iter().any(|&(_, k)| user(k) == user(i)) {
                    verdicts[i] = ExclusionReason::DuplicateLineUser as u8;
                    continue;
                }
                let capped = cap_all
                    || self.cap.is_some_and(|cap| {
                        same_hash
                            .clone()
                            .find(|e| Some(e.1) == user(i))
                            .is_some_and(|e| !cap.allows_times(e.2, self.not_before))
                    });
                if capped {
                    verdicts[i] = CAPPED;
                }
            }
            start = end;
        }
    }

    /// The holdout check of every contact still in, and the final verdicts.
    fn holdout(&self, contacts: &[Contact], verdicts: &mut [u8]) {
        let hasher = self.holdout.map(HoldoutHasher::new);
        let decide = |contacts: &[Contact], verdicts: &mut [u8]| {
            for (c, v) in contacts.iter().zip(verdicts) {
                if *v != PENDING && *v != CAPPED {
                    continue;
                }
                *v = if hasher.as_ref().is_some_and(|h| h.contains(&c.customer)) {
                    ExclusionReason::Holdout as u8
                } else if *v == CAPPED {
                    ExclusionReason::FrequencyCap as u8
                } else {
                    ADMITTED
                };
            }
        };
        if contacts.len() < self.parallel_from || hasher.is_none() {
            decide(contacts, verdicts);
            return;
        }
        let mid = contacts.len() / 2;
        let (c1, c2) = contacts.split_at(mid);
        let (v1, v2) = verdicts.split_at_mut(mid);
        std::thread::scope(|s| {
            s.spawn(|| decide(c2, v2));
            decide(c1, v1);
        });
    }
}

/// The hash grouping equal LINE users.
fn user_hash(user: &LineUserId) -> u64 {
    let mut h = FastHasher::default();
    h.write(user.as_str().as_bytes());
    h.finish()
}

/// `keys` sorted by (hash, index): scattered into buckets by the hash's top bits (the
/// scatter keeps index order), then each small bucket sorted in cache.
fn by_hash(keys: Vec<(u64, usize)>) -> Vec<(u64, usize)> {
    let bits = (keys.len() / 256).max(1).ilog2().min(16);
    if bits == 0 {
        let mut keys = keys;
        keys.sort_unstable();
        return keys;
    }
    let shift = 64 - bits;
    let mut starts = vec![0usize; (1 << bits) + 1];
    for &(h, _) in &keys {
        starts[(h >> shift) as usize + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut next = starts.clone();
    let mut out = vec![(0u64, 0usize); keys.len()];
    for &(h, i) in &keys {
        let slot = &mut next[(h >> shift) as usize];
        out[*slot] = (h, i);
        *slot += 1;
    }
    for b in 0..starts.len() - 1 {
        out[starts[b]..starts[b + 1]].sort_unstable();
    }
    out
}

/// The users whose history can reach `cap` (at least `max_sends` sends), by (hash, user).
fn capped_history(
    cap: FrequencyCap,
    history: &SendHistory,
) -> Vec<(u64, &LineUserId, &[DateTime<Utc>])> {
    let min = cap.max_sends().max(1) as usize;
    let mut out: Vec<_> = history
        .users()
        .filter(|(_, times)| times.len() >= min)
        .map(|(user, times)| (user_hash(user), user, times))
        .collect();
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    out
}
