//! Admission: which candidates may receive a campaign, decided for all candidates at once.
//!
//! The rules are those of [`ExclusionReason::ALL`], in that order; the first that applies
//! counts. Checking them one candidate at a time through a hash set of the LINE users seen
//! and a hash map of the send history costs two cache misses per candidate, which at a million
//! candidates was half of planning. Instead:
//!
//! 1. One pass over the candidates (on two threads for large audiences) makes every check that
//!    depends on the candidate alone: linked, following, consent, exclusion list, the holdout
//!    and the A/B arm. Each candidate's IDs are read once, while they are in cache.
//! 2. The LINE users of the candidates still pending are grouped by hash: scattered into
//!    buckets by the hash's top bits, keeping candidate order.
//! 3. Each half of the buckets (one thread each) is sorted in cache and merged with the send
//!    history sorted the same way: duplicates, then the frequency cap.

use std::hash::Hasher as _;

use chrono::{DateTime, Utc};

use super::planner::{Campaign, Contact, ExclusionReason};
use super::policy::{DeliveryPolicy, FrequencyCap, Holdout, SendHistory};
use super::split::{FastHasher, HoldoutHasher};
use crate::{CustomerId, LineUserId};

/// A candidate that receives the campaign (any other verdict is an [`ExclusionReason`] as `u8`).
pub(super) const ADMITTED: u8 = u8::MAX;
/// Passed the checks before de-duplication; not decided yet.
const PENDING: u8 = u8::MAX - 1;
/// As [`PENDING`], and in the holdout group: held out unless a duplicate.
const HELD: u8 = u8::MAX - 2;

/// Candidates from which work is split over two threads.
pub(super) const PARALLEL_FROM: usize = 50_000;

/// Each candidate's verdict ([`ADMITTED`] or an [`ExclusionReason`] as `u8`), and the arm of
/// each admitted one.
pub(super) struct Verdicts {
    pub(super) verdicts: Vec<u8>,
    pub(super) arms: Vec<u32>,
}

/// (hash of the LINE user, candidate index) of a pending candidate.
type Key = (u64, usize);

/// Sent-history users who can reach the cap: (hash, user, send times), sorted.
type History<'h> = [(u64, &'h LineUserId, &'h [DateTime<Utc>])];

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
    /// applies, checked in the order of [`ExclusionReason::ALL`]; and the arm `arm_of` gives
    /// each admitted contact's customer.
    pub(super) fn admit(
        &self,
        contacts: &[Contact],
        arm_of: &(dyn Fn(&CustomerId) -> u32 + Sync),
    ) -> Verdicts {
        let mut out = Verdicts { verdicts: vec![0; contacts.len()], arms: vec![0; contacts.len()] };
        let parts = self.first_pass(contacts, arm_of, &mut out);
        let (mut keys, starts) = by_hash(&parts);
        drop(parts);
        let history = self.cap.map(|cap| capped_history(cap, self.history)).unwrap_or_default();
        let verdicts = &out.verdicts;
        let changes = if keys.len() < self.parallel_from {
            sort_buckets(&mut keys, &starts);
            vec![self.duplicates_and_cap(contacts, &keys, &history, verdicts)]
        } else {
            // Hash groups never straddle buckets: split where half the keys are behind.
            let half = starts.partition_point(|&s| s * 2 < keys.len());
            let (left, right) = keys.split_at_mut(starts[half]);
            let (left_starts, right_starts) = starts.split_at(half);
            let mut right_starts = right_starts.to_vec();
            for s in &mut right_starts {
                *s -= left.len();
            }
            let mut left_starts = left_starts.to_vec();
            left_starts.push(left.len());
            std::thread::scope(|s| {
                let second = s.spawn(|| {
                    sort_buckets(right, &right_starts);
                    self.duplicates_and_cap(contacts, right, &history, verdicts)
                });
                sort_buckets(left, &left_starts);
                let first = self.duplicates_and_cap(contacts, left, &history, verdicts);
                vec![first, second.join().unwrap_or_else(|e| std::panic::resume_unwind(e))]
            })
        };
        for (i, verdict) in changes.into_iter().flatten() {
            out.verdicts[i] = verdict;
        }
        for v in &mut out.verdicts {
            *v = match *v {
                PENDING => ADMITTED,
                HELD => ExclusionReason::Holdout as u8,
                v => v,
            };
        }
        out
    }

    /// Fills every contact's verdict as far as it depends on the contact alone (not linked,
    /// not following, no consent, excluded, [`HELD`] or [`PENDING`]) and the arm of every
    /// pending one; returns the keys of the pending ones, in contact order, in parts.
    fn first_pass(
        &self,
        contacts: &[Contact],
        arm_of: &(dyn Fn(&CustomerId) -> u32 + Sync),
        out: &mut Verdicts,
    ) -> Vec<Vec<Key>> {
        let holdout = self.holdout.map(HoldoutHasher::new);
        let run = |offset: usize, contacts: &[Contact], verdicts: &mut [u8], arms: &mut [u32]| {
            let mut keys = Vec::with_capacity(contacts.len());
            for (k, ((c, verdict), arm)) in contacts.iter().zip(verdicts).zip(arms).enumerate() {
                *verdict = self.first_check(c);
                let Some(user) = c.line_user.as_ref().filter(|_| *verdict == PENDING) else {
                    continue;
                };
                keys.push((user_hash(user), offset + k));
                if holdout.as_ref().is_some_and(|h| h.contains(&c.customer)) {
                    *verdict = HELD;
                } else {
                    *arm = arm_of(&c.customer);
                }
            }
            keys
        };
        let Verdicts { verdicts, arms } = out;
        if contacts.len() < self.parallel_from {
            return vec![run(0, contacts, verdicts, arms)];
        }
        let mid = contacts.len() / 2;
        let (c1, c2) = contacts.split_at(mid);
        let (v1, v2) = verdicts.split_at_mut(mid);
        let (a1, a2) = arms.split_at_mut(mid);
        std::thread::scope(|s| {
            let second = s.spawn(|| run(mid, c2, v2, a2));
            let first = run(0, c1, v1, a1);
            vec![first, second.join().unwrap_or_else(|e| std::panic::resume_unwind(e))]
        })
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

    /// The verdicts `keys` (whole hash groups, sorted by (hash, index)) change: a contact
    /// whose LINE user an earlier pending contact has is a duplicate; else, unless held out,
    /// a contact whose user is at the frequency cap is capped.
    fn duplicates_and_cap(
        &self,
        contacts: &[Contact],
        keys: &[Key],
        history: &History<'_>,
        verdicts: &[u8],
    ) -> Vec<(usize, u8)> {
        let user = |i: usize| contacts[i].line_user.as_ref();
        let cap_all =
            self.cap.is_some_and(|c| c.window() > chrono::TimeDelta::zero() && c.max_sends() == 0);
        let mut changes = Vec::new();
        let Some(&(first, _)) = keys.first() else { return changes };
        let mut h = history.partition_point(|e| e.0 < first);
        let mut start = 0;
        while start < keys.len() {
            let hash = keys[start].0;
            let end = start + keys[start..].iter().take_while(|k| k.0 == hash).count();
            while h < history.len() && history[h].0 < hash {
                h += 1;
            }
            let same_hash = history[h..].iter().take_while(|e| e.0 == hash);
            for (j, &(_, i)) in keys[start..end].iter().enumerate() {
                // Indices ascend within a group: an earlier equal user means a duplicate.
                if keys[start..start + j].iter().any(|&(_, k)| user(k) == user(i)) {
                    changes.push((i, ExclusionReason::DuplicateLineUser as u8));
                    continue;
                }
                if verdicts[i] == HELD {
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
                    changes.push((i, ExclusionReason::FrequencyCap as u8));
                }
            }
            start = end;
        }
        changes
    }
}

/// The hash grouping equal LINE users.
fn user_hash(user: &LineUserId) -> u64 {
    let mut h = FastHasher::default();
    h.write(user.as_str().as_bytes());
    h.finish()
}

/// The keys of `parts` (in contact order) scattered into buckets by the hash's top bits (the
/// scatter keeps index order), and where each bucket starts (one more entry: the end).
fn by_hash(parts: &[Vec<Key>]) -> (Vec<Key>, Vec<usize>) {
    let len = parts.iter().map(Vec::len).sum::<usize>();
    let bits = (len / 256).max(1).ilog2().min(16);
    let bucket = |h: u64| h.checked_shr(64 - bits).unwrap_or(0) as usize;
    let mut starts = vec![0usize; (1 << bits) + 1];
    for &(h, _) in parts.iter().flatten() {
        starts[bucket(h) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut next = starts.clone();
    let mut out = vec![(0u64, 0usize); len];
    for &(h, i) in parts.iter().flatten() {
        let slot = &mut next[bucket(h)];
        out[*slot] = (h, i);
        *slot += 1;
    }
    (out, starts)
}

/// Sorts each bucket of `keys` (bucket `b` is `starts[b]..starts[b + 1]`) by (hash, index):
/// small runs, sorted in cache.
fn sort_buckets(keys: &mut [Key], starts: &[usize]) {
    for w in starts.windows(2) {
        keys[w[0]..w[1]].sort_unstable();
    }
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
