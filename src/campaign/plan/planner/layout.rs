//! The plan's batches laid out in a stable order, then made.

use super::*;

/// A batch to make, in plan order.
pub(super) enum Emit<'c> {
    /// One recipient's push batch of their rendered messages.
    Push { arm: usize, customer: &'c CustomerId, user: &'c LineUserId, messages: Vec<Message> },
    /// A multicast batch of the arm's static messages to `Layout::members[members]`.
    Multicast { arm: usize, members: Range<usize> },
}

impl Emit<'_> {
    pub(super) fn recipients(&self) -> usize {
        match self {
            Self::Push { .. } => 1,
            Self::Multicast { members, .. } => members.len(),
        }
    }
}

/// Lays the recipients out in batches, in a stable order; [`Layout::build`] makes them.
pub(super) struct Layout<'c> {
    pub(super) campaign: &'c Campaign,
    pub(super) emits: Vec<Emit<'c>>,
    /// The recipients of the multicast batches, batch after batch.
    pub(super) members: Vec<(&'c CustomerId, &'c LineUserId)>,
    /// The multicast chunk being filled, per arm.
    pub(super) chunks: Vec<Vec<(&'c CustomerId, &'c LineUserId)>>,
    pub(super) arms_out: Vec<ArmSummary>,
    pub(super) samples: Vec<Sample>,
    /// A render error means planning fails: stop laying out, keep counting.
    pub(super) failing: bool,
}

impl<'c> Layout<'c> {
    pub(super) fn new(campaign: &'c Campaign, arms: &[PreparedArm], recipients: usize) -> Self {
        let capacity = if arms.iter().any(|a| a.statics.is_none()) {
            recipients
        } else {
            recipients / MULTICAST_MAX_RECIPIENTS + arms.len()
        };
        let members = if arms.iter().any(|a| a.statics.is_some()) { recipients } else { 0 };
        Self {
            campaign,
            emits: Vec::with_capacity(capacity),
            members: Vec::with_capacity(members),
            chunks: arms.iter().map(|_| Vec::new()).collect(),
            arms_out: arms
                .iter()
                .map(|a| ArmSummary {
                    name: a.name.clone(),
                    weight: a.weight,
                    transport: if a.statics.is_some() {
                        Transport::Multicast
                    } else {
                        Transport::Push
                    },
                    recipients: 0,
                    batches: 0,
                })
                .collect(),
            samples: Vec::new(),
            failing: false,
        }
    }

    /// Adds an admitted recipient to its arm: to the arm's multicast chunk, or as a push batch
    /// of its rendered messages. A recipient whose messages cannot be rendered is left out for
    /// the returned reason (and recorded in `failures` when the campaign fails on them).
    pub(super) fn add(
        &mut self,
        arms: &[PreparedArm],
        pick: Pick<'c>,
        failures: &mut RenderFailures,
    ) -> Result<Option<ExclusionReason>, PlanError> {
        let Pick { customer, user, arm, rendered } = pick;
        let Some(rendered) = rendered else {
            self.multicast(arm, arms, customer, user);
            return Ok(None);
        };
        match rendered_or_excluded(self.campaign, rendered, customer, failures)? {
            Ok(messages) => {
                self.push(arm, customer, user, messages);
                Ok(None)
            }
            Err(reason) => {
                self.failing = failures.is_failing();
                Ok(Some(reason))
            }
        }
    }

    pub(super) fn multicast(
        &mut self,
        arm: usize,
        arms: &[PreparedArm],
        customer: &'c CustomerId,
        user: &'c LineUserId,
    ) {
        self.arms_out[arm].recipients += 1;
        if self.failing {
            return;
        }
        if self.arms_out[arm].recipients == 1 && self.campaign.samples > 0 {
            let messages = arms[arm].statics.clone().unwrap_or_default();
            self.sample(arm, customer, messages);
        }
        let chunk = &mut self.chunks[arm];
        if chunk.capacity() == 0 {
            chunk.reserve_exact(MULTICAST_MAX_RECIPIENTS);
        }
        chunk.push((customer, user));
        if chunk.len() == MULTICAST_MAX_RECIPIENTS {
            self.flush(arm, arms);
        }
    }

    pub(super) fn flush(&mut self, arm: usize, arms: &[PreparedArm]) {
        if arms[arm].statics.is_none() || self.chunks[arm].is_empty() || self.failing {
            return;
        }
        let start = self.members.len();
        self.members.append(&mut self.chunks[arm]);
        self.arms_out[arm].batches += 1;
        self.emits.push(Emit::Multicast { arm, members: start..self.members.len() });
    }

    pub(super) fn push(
        &mut self,
        arm: usize,
        customer: &'c CustomerId,
        user: &'c LineUserId,
        messages: Vec<Message>,
    ) {
        self.arms_out[arm].recipients += 1;
        if self.failing {
            return;
        }
        if self.arms_out[arm].recipients <= self.campaign.samples as u64 {
            self.sample(arm, customer, messages.clone());
        }
        self.arms_out[arm].batches += 1;
        self.emits.push(Emit::Push { arm, customer, user, messages });
    }

    pub(super) fn sample(&mut self, arm: usize, customer: &CustomerId, messages: Vec<Message>) {
        let name = self.campaign.ab.then(|| self.arms_out[arm].name.clone());
        self.samples.push(Sample { arm: name, customer: customer.clone(), messages });
    }

    /// The batches, numbered in layout order. Large plans are made on two threads, each
    /// filling its own vector with a contiguous run of batches.
    pub(super) fn build(
        &mut self,
        arms: &[PreparedArm],
        not_before: DateTime<Utc>,
        parallel_from: usize,
    ) -> Result<Vec<Batch>, PlanError> {
        let mut emits = std::mem::take(&mut self.emits);
        let mut first = Vec::with_capacity(emits.len());
        let recipients: usize = emits.iter().map(Emit::recipients).sum();
        if recipients < parallel_from || emits.len() < 2 {
            self.make(arms, not_before, &mut emits, 0, &mut first)?;
            return Ok(first);
        }
        // Split where half the recipients are behind: a multicast batch is 500 clones.
        let mut behind = 0;
        let mid = emits
            .iter()
            .position(|e| {
                behind += e.recipients();
                behind * 2 >= recipients
            })
            .map_or(emits.len() / 2, |i| (i + 1).min(emits.len() - 1));
        let (left, right) = emits.split_at_mut(mid);
        let this = &*self;
        let second = std::thread::scope(|s| {
            let second = s.spawn(|| {
                let mut out = Vec::with_capacity(right.len());
                this.make(arms, not_before, right, mid, &mut out).map(|()| out)
            });
            let first_done = this.make(arms, not_before, left, 0, &mut first);
            let second = second.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            first_done.and(second)
        })?;
        first.extend(second);
        Ok(first)
    }

    /// Makes the batches of `emits`, the first numbered `done + 1`, onto `out`.
    pub(super) fn make(
        &self,
        arms: &[PreparedArm],
        not_before: DateTime<Utc>,
        emits: &mut [Emit<'c>],
        done: usize,
        out: &mut Vec<Batch>,
    ) -> Result<(), PlanError> {
        let mut maker = BatchMaker::new(self.campaign, not_before);
        for (k, emit) in emits.iter_mut().enumerate() {
            let (arm, transport, recipients, messages) = match emit {
                Emit::Push { arm, customer, user, messages } => {
                    let recipient = BatchRecipient {
                        customer: (*customer).clone(),
                        line_user: (*user).clone(),
                    };
                    (*arm, Transport::Push, vec![recipient], std::mem::take(messages))
                }
                Emit::Multicast { arm, members } => {
                    let recipients = self.members[members.clone()]
                        .iter()
                        .map(|&(customer, user)| BatchRecipient {
                            customer: customer.clone(),
                            line_user: user.clone(),
                        })
                        .collect();
                    (
                        *arm,
                        Transport::Multicast,
                        recipients,
                        arms[*arm].statics.clone().unwrap_or_default(),
                    )
                }
            };
            out.push(maker.batch(done + k + 1, &arms[arm].name, transport, recipients, messages));
        }
        Ok(())
    }

    /// The plan: the batches and their summary.
    pub(super) fn finish(
        self,
        batches: Vec<Batch>,
        gate: &Gate<'_>,
        now: DateTime<Utc>,
        candidates: u64,
        excluded: [u64; ExclusionReason::ALL.len()],
    ) -> Plan {
        let recipients = self.arms_out.iter().map(|a| a.recipients).sum();
        let summary = DryRun {
            campaign: self.campaign.id.clone(),
            planned_at: now,
            send_at: gate.send_at,
            not_before: gate.not_before,
            candidates,
            recipients,
            deferred: if gate.not_before > gate.send_at { recipients } else { 0 },
            batches: batches.len() as u64,
            arms: self.arms_out,
            excluded: ExclusionReason::ALL
                .iter()
                .zip(excluded)
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| (*r, n))
                .collect(),
            samples: self.samples,
        };
        Plan { batches, summary }
    }
}
