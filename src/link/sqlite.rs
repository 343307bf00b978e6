//! SQLite link store (feature `sqlite`).

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};

use super::incentive::{
    Claim, GrantState, IncentiveGrant, IncentiveLedger, check_incentive, check_settle,
    grant_from_row, no_claim,
};
use super::secret::TicketKey;
use super::store::{
    AuditAction, AuditRecord, ConflictPolicy, CustomerLink, FollowStatus, Link, LinkOutcome,
    LinkPlan, LinkSource, LinkStore, LinkStoreError, Redeemed, TICKET_GRACE_MS, Ticket, TicketKind,
    check_ticket, customer, failed_audit, from_ms, plan_link, unlink_audit, user,
};
use crate::sqlite::{self, Durability, SharedConnection};
use crate::{CustomerId, LineUserId};

const BACKEND: &str = "sqlite";

/// Schema migrations, applied in order and recorded in `enishi_link_migrations`.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE enishi_links (
        channel TEXT NOT NULL,
        line_user_id TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        source TEXT NOT NULL,
        linked_at_ms INTEGER NOT NULL,
        PRIMARY KEY (channel, line_user_id),
        UNIQUE (channel, customer_id)
    );
    CREATE TABLE enishi_link_tickets (
        channel TEXT NOT NULL,
        key TEXT NOT NULL,
        kind TEXT NOT NULL,
        customer_id TEXT,
        line_user_id TEXT,
        data TEXT,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        consumed_at_ms INTEGER,
        PRIMARY KEY (channel, key)
    );
    CREATE TABLE enishi_link_follow (
        channel TEXT NOT NULL,
        line_user_id TEXT NOT NULL,
        following INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (channel, line_user_id)
    );
    CREATE TABLE enishi_link_audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        action TEXT NOT NULL,
        line_user_id TEXT,
        customer_id TEXT,
        source TEXT,
        detail TEXT
    );",
    "CREATE TABLE enishi_link_incentives (
        channel TEXT NOT NULL,
        incentive TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        state TEXT NOT NULL,
        claimed_at_ms INTEGER NOT NULL,
        settled_at_ms INTEGER,
        detail TEXT,
        PRIMARY KEY (channel, incentive, customer_id)
    );
    CREATE INDEX enishi_link_incentives_unsettled
        ON enishi_link_incentives (channel, claimed_at_ms) WHERE state = 'claimed';",
];

fn sq(e: rusqlite::Error) -> LinkStoreError {
    LinkStoreError::backend(BACKEND, e)
}

/// A link store (and [`IncentiveLedger`]) in an SQLite database file (the embedded default).
///
/// Migrations are applied on open. Every write runs in an `IMMEDIATE` transaction, so several
/// processes sharing the file still see exactly one winner per ticket and per link. Blocking
/// SQLite calls run on tokio's blocking pool: use the store inside a tokio runtime.
#[derive(Debug, Clone)]
pub struct SqliteLinkStore {
    conn: SharedConnection,
    channel: Arc<str>,
}

impl SqliteLinkStore {
    /// Opens (creating if needed) the database at `path` for `channel` (the LINE channel ID;
    /// several channels may share one file).
    ///
    /// # Errors
    /// [`LinkStoreError::Backend`] when the file cannot be opened or migrated.
    pub fn open(path: impl AsRef<Path>, channel: &str) -> Result<Self, LinkStoreError> {
        let conn = sqlite::open_file(path.as_ref(), Durability::Full).map_err(sq)?;
        Self::from_connection(conn, channel)
    }

    /// A private in-memory database (tests, demos).
    ///
    /// # Errors
    /// [`LinkStoreError::Backend`] when SQLite fails.
    pub fn open_in_memory(channel: &str) -> Result<Self, LinkStoreError> {
        Self::from_connection(sqlite::open_in_memory().map_err(sq)?, channel)
    }

    /// Uses an open connection, applying pending migrations.
    ///
    /// # Errors
    /// [`LinkStoreError::InvalidConfig`] for an empty channel; [`LinkStoreError::Backend`]
    /// when a migration fails.
    pub fn from_connection(mut conn: Connection, channel: &str) -> Result<Self, LinkStoreError> {
        if channel.is_empty() {
            return Err(LinkStoreError::InvalidConfig {
                what: "channel",
                value: String::new(),
                reason: "expected the LINE channel ID",
            });
        }
        sqlite::prepare(&conn).map_err(sq)?;
        sqlite::migrate(&mut conn, "enishi_link_migrations", MIGRATIONS).map_err(sq)?;
        Ok(Self { conn: SharedConnection::new(conn), channel: channel.into() })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &str) -> Result<T, LinkStoreError> + Send + 'static,
    ) -> Result<T, LinkStoreError> {
        let channel = Arc::clone(&self.channel);
        self.conn
            .call(move |conn| {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(sq)?;
                let value = f(&tx, &channel);
                // A conflict's audit record (and consumed nonce) must persist; any other error
                // rolls back (on drop) so nothing is half-written.
                if matches!(value, Ok(_) | Err(LinkStoreError::Conflict(_))) {
                    tx.commit().map_err(sq)?;
                }
                value
            })
            .await
            .map_err(|e| LinkStoreError::backend(BACKEND, e))?
    }
}

type LinkRow = (String, String, String, i64);

fn to_link((u, c, s, at): LinkRow) -> Result<Link, LinkStoreError> {
    Ok(Link::new(user(u)?, customer(c)?, LinkSource::parse(&s)?, from_ms(at)))
}

fn link_where(
    tx: &Transaction<'_>,
    ch: &str,
    column: &str,
    value: &str,
) -> Result<Option<Link>, LinkStoreError> {
    let sql = format!(
        "SELECT line_user_id, customer_id, source, linked_at_ms FROM enishi_links
         WHERE channel = ?1 AND {column} = ?2"
    );
    let row: Option<LinkRow> = tx
        .prepare_cached(&sql)
        .map_err(sq)?
        .query_row(params![ch, value], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()
        .map_err(sq)?;
    row.map(to_link).transpose()
}

fn insert_audit(tx: &Transaction<'_>, ch: &str, a: &AuditRecord) -> Result<(), LinkStoreError> {
    tx.prepare_cached(
        "INSERT INTO enishi_link_audit (channel, at_ms, action, line_user_id, customer_id, source, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .map_err(sq)?
    .execute(params![
        ch,
        a.at.timestamp_millis(),
        a.action.as_str(),
        a.line_user.as_ref().map(LineUserId::as_str),
        a.customer.as_ref().map(CustomerId::as_str),
        a.source.map(LinkSource::as_str),
        a.detail,
    ])
    .map_err(sq)?;
    Ok(())
}

fn delete_link(tx: &Transaction<'_>, ch: &str, user: &LineUserId) -> Result<(), LinkStoreError> {
    tx.prepare_cached("DELETE FROM enishi_links WHERE channel = ?1 AND line_user_id = ?2")
        .map_err(sq)?
        .execute(params![ch, user.as_str()])
        .map_err(sq)?;
    Ok(())
}

fn do_link(
    tx: &Transaction<'_>,
    ch: &str,
    line_user: &LineUserId,
    cust: &CustomerId,
    source: LinkSource,
    policy: ConflictPolicy,
    now: DateTime<Utc>,
) -> Result<LinkOutcome, LinkStoreError> {
    let by_user = link_where(tx, ch, "line_user_id", line_user.as_str())?;
    let by_customer =
        link_where(tx, ch, "customer_id", cust.as_str())?.filter(|l| &l.line_user != line_user);
    apply(tx, ch, plan_link(by_user, by_customer, line_user, cust, source, policy, now))
}

fn apply(tx: &Transaction<'_>, ch: &str, plan: LinkPlan) -> Result<LinkOutcome, LinkStoreError> {
    for l in &plan.delete {
        delete_link(tx, ch, &l.line_user)?;
    }
    if let Some(l) = &plan.insert {
        tx.prepare_cached(
            "INSERT INTO enishi_links (channel, line_user_id, customer_id, source, linked_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(sq)?
        .execute(params![
            ch,
            l.line_user.as_str(),
            l.customer.as_str(),
            l.source.as_str(),
            l.linked_at.timestamp_millis()
        ])
        .map_err(sq)?;
    }
    for a in &plan.audit {
        insert_audit(tx, ch, a)?;
    }
    plan.outcome.map_err(LinkStoreError::Conflict)
}

type TicketRow = (String, Option<String>, Option<String>, Option<String>, i64, i64, Option<i64>);

fn take(
    tx: &Transaction<'_>,
    ch: &str,
    kind: TicketKind,
    key: &TicketKey,
    line_user: Option<&LineUserId>,
    now: DateTime<Utc>,
) -> Result<Ticket, LinkStoreError> {
    let ticket = peek(tx, ch, kind, key, line_user, now)?;
    tx.prepare_cached(
        "UPDATE enishi_link_tickets SET consumed_at_ms = ?3 WHERE channel = ?1 AND key = ?2",
    )
    .map_err(sq)?
    .execute(params![ch, key.as_str(), now.timestamp_millis()])
    .map_err(sq)?;
    Ok(ticket)
}

fn peek(
    tx: &Transaction<'_>,
    ch: &str,
    kind: TicketKind,
    key: &TicketKey,
    line_user: Option<&LineUserId>,
    now: DateTime<Utc>,
) -> Result<Ticket, LinkStoreError> {
    let row: Option<TicketRow> = tx
        .prepare_cached(
            "SELECT kind, customer_id, line_user_id, data, created_at_ms, expires_at_ms, consumed_at_ms
             FROM enishi_link_tickets WHERE channel = ?1 AND key = ?2",
        )
        .map_err(sq)?
        .query_row(params![ch, key.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })
        .optional()
        .map_err(sq)?;
    let row = match row {
        None => None,
        Some((k, c, u, data, created, expires, consumed)) => Some((
            Ticket {
                kind: TicketKind::parse(&k)?,
                key: key.clone(),
                customer: c.map(customer).transpose()?,
                line_user: u.map(user).transpose()?,
                data,
                created_at: from_ms(created),
                expires_at: from_ms(expires),
            },
            consumed,
        )),
    };
    check_ticket(kind, row, line_user, now)
}

#[async_trait::async_trait]
impl LinkStore for SqliteLinkStore {
    async fn put_ticket(&self, ticket: &Ticket) -> Result<(), LinkStoreError> {
        let t = ticket.clone();
        self.run(move |tx, ch| {
            let n = tx
                .prepare_cached(
                    "INSERT INTO enishi_link_tickets (channel, key, kind, customer_id, line_user_id,
                     data, created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (channel, key) DO NOTHING",
                )
                .map_err(sq)?
                .execute(params![
                    ch,
                    t.key.as_str(),
                    t.kind.as_str(),
                    t.customer.as_ref().map(CustomerId::as_str),
                    t.line_user.as_ref().map(LineUserId::as_str),
                    t.data,
                    t.created_at.timestamp_millis(),
                    t.expires_at.timestamp_millis(),
                ])
                .map_err(sq)?;
            if n == 0 { Err(LinkStoreError::DuplicateTicket(t.kind)) } else { Ok(()) }
        })
        .await
    }

    async fn take_ticket(
        &self,
        kind: TicketKind,
        key: &TicketKey,
        line_user: Option<&LineUserId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket, LinkStoreError> {
        let key = key.clone();
        let line_user = line_user.cloned();
        self.run(move |tx, ch| take(tx, ch, kind, &key, line_user.as_ref(), now)).await
    }

    async fn peek_ticket(
        &self,
        kind: TicketKind,
        key: &TicketKey,
        line_user: Option<&LineUserId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket, LinkStoreError> {
        let key = key.clone();
        let line_user = line_user.cloned();
        self.run(move |tx, ch| peek(tx, ch, kind, &key, line_user.as_ref(), now)).await
    }

    async fn redeem_nonce(
        &self,
        key: &TicketKey,
        line_user: &LineUserId,
        policy: ConflictPolicy,
        now: DateTime<Utc>,
    ) -> Result<Redeemed, LinkStoreError> {
        let key = key.clone();
        let line_user = line_user.clone();
        self.run(move |tx, ch| {
            let ticket = take(tx, ch, TicketKind::Nonce, &key, Some(&line_user), now)?;
            let Some(cust) = ticket.customer.clone() else {
                return Err(LinkStoreError::Corrupt("a nonce without a customer".into()));
            };
            let outcome = do_link(tx, ch, &line_user, &cust, LinkSource::AccountLink, policy, now)?;
            Ok(Redeemed { ticket, outcome })
        })
        .await
    }

    async fn fail_nonce(
        &self,
        key: &TicketKey,
        now: DateTime<Utc>,
    ) -> Result<Ticket, LinkStoreError> {
        let key = key.clone();
        self.run(move |tx, ch| {
            let ticket = take(tx, ch, TicketKind::Nonce, &key, None, now)?;
            insert_audit(tx, ch, &failed_audit(&ticket, now))?;
            Ok(ticket)
        })
        .await
    }

    async fn link(
        &self,
        line_user: &LineUserId,
        customer: &CustomerId,
        source: LinkSource,
        policy: ConflictPolicy,
        now: DateTime<Utc>,
    ) -> Result<LinkOutcome, LinkStoreError> {
        let (u, c) = (line_user.clone(), customer.clone());
        self.run(move |tx, ch| do_link(tx, ch, &u, &c, source, policy, now)).await
    }

    async fn unlink_user(
        &self,
        line_user: &LineUserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Link>, LinkStoreError> {
        let u = line_user.clone();
        self.run(move |tx, ch| {
            let link = link_where(tx, ch, "line_user_id", u.as_str())?;
            if let Some(l) = &link {
                delete_link(tx, ch, &l.line_user)?;
                insert_audit(tx, ch, &unlink_audit(l, now))?;
            }
            Ok(link)
        })
        .await
    }

    async fn unlink_customer(
        &self,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Option<Link>, LinkStoreError> {
        let c = customer.clone();
        self.run(move |tx, ch| {
            let link = link_where(tx, ch, "customer_id", c.as_str())?;
            if let Some(l) = &link {
                delete_link(tx, ch, &l.line_user)?;
                insert_audit(tx, ch, &unlink_audit(l, now))?;
            }
            Ok(link)
        })
        .await
    }

    async fn link_of_user(&self, line_user: &LineUserId) -> Result<Option<Link>, LinkStoreError> {
        let u = line_user.clone();
        self.run(move |tx, ch| link_where(tx, ch, "line_user_id", u.as_str())).await
    }

    async fn link_of_customer(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<Link>, LinkStoreError> {
        let c = customer.clone();
        self.run(move |tx, ch| link_where(tx, ch, "customer_id", c.as_str())).await
    }

    async fn links_of_customers(
        &self,
        customers: &[CustomerId],
    ) -> Result<Vec<CustomerLink>, LinkStoreError> {
        // One statement for any number of customers: the IDs go in as one JSON array.
        let ids =
            serde_json::to_string(&customers.iter().map(CustomerId::as_str).collect::<Vec<_>>())
                .map_err(|e| LinkStoreError::backend(BACKEND, e))?;
        self.run(move |tx, ch| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT l.line_user_id, l.customer_id, l.source, l.linked_at_ms,
                            f.following, f.updated_at_ms
                     FROM enishi_links l
                     LEFT JOIN enishi_link_follow f
                       ON f.channel = l.channel AND f.line_user_id = l.line_user_id
                     WHERE l.channel = ?1 AND l.customer_id IN (SELECT value FROM json_each(?2))",
                )
                .map_err(sq)?;
            let rows = stmt
                .query_map(params![ch, ids], |r| {
                    let link: LinkRow = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                    let follow: (Option<bool>, Option<i64>) = (r.get(4)?, r.get(5)?);
                    Ok((link, follow))
                })
                .map_err(sq)?;
            let mut out = Vec::new();
            for row in rows {
                let (link, follow) = row.map_err(sq)?;
                let follow = match follow {
                    (Some(following), Some(at)) => {
                        Some(FollowStatus { following, updated_at: from_ms(at) })
                    }
                    _ => None,
                };
                out.push(CustomerLink::new(to_link(link)?, follow));
            }
            Ok(out)
        })
        .await
    }

    async fn set_following(
        &self,
        line_user: &LineUserId,
        following: bool,
        at: DateTime<Utc>,
    ) -> Result<(), LinkStoreError> {
        let u = line_user.clone();
        self.run(move |tx, ch| {
            tx.prepare_cached(
                "INSERT INTO enishi_link_follow (channel, line_user_id, following, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (channel, line_user_id) DO UPDATE
                 SET following = excluded.following, updated_at_ms = excluded.updated_at_ms
                 WHERE excluded.updated_at_ms >= enishi_link_follow.updated_at_ms",
            )
            .map_err(sq)?
            .execute(params![ch, u.as_str(), following, at.timestamp_millis()])
            .map_err(sq)?;
            Ok(())
        })
        .await
    }

    async fn follow_status(
        &self,
        line_user: &LineUserId,
    ) -> Result<Option<FollowStatus>, LinkStoreError> {
        let u = line_user.clone();
        self.run(move |tx, ch| {
            tx.prepare_cached(
                "SELECT following, updated_at_ms FROM enishi_link_follow
                 WHERE channel = ?1 AND line_user_id = ?2",
            )
            .map_err(sq)?
            .query_row(params![ch, u.as_str()], |r| {
                Ok(FollowStatus { following: r.get(0)?, updated_at: from_ms(r.get(1)?) })
            })
            .optional()
            .map_err(sq)
        })
        .await
    }

    async fn audit_trail(&self, limit: usize) -> Result<Vec<AuditRecord>, LinkStoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |tx, ch| {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT at_ms, action, line_user_id, customer_id, source, detail
                     FROM enishi_link_audit WHERE channel = ?1 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(sq)?;
            type Row =
                (i64, String, Option<String>, Option<String>, Option<String>, Option<String>);
            let rows = stmt
                .query_map(params![ch, limit], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })
                .map_err(sq)?
                .collect::<Result<Vec<Row>, _>>()
                .map_err(sq)?;
            rows.into_iter()
                .map(|(at, action, u, c, s, detail)| {
                    let mut a = AuditRecord::new(from_ms(at), AuditAction::parse(&action)?);
                    a.line_user = u.map(user).transpose()?;
                    a.customer = c.map(customer).transpose()?;
                    a.source = s.as_deref().map(LinkSource::parse).transpose()?;
                    a.detail = detail;
                    Ok(a)
                })
                .collect()
        })
        .await
    }

    async fn purge_tickets(&self, now: DateTime<Utc>) -> Result<u64, LinkStoreError> {
        let cutoff = now.timestamp_millis().saturating_sub(TICKET_GRACE_MS);
        self.run(move |tx, ch| {
            let n = tx
                .prepare_cached(
                    "DELETE FROM enishi_link_tickets WHERE channel = ?1
                     AND (expires_at_ms <= ?2 OR consumed_at_ms <= ?2)",
                )
                .map_err(sq)?
                .execute(params![ch, cutoff])
                .map_err(sq)?;
            Ok(n as u64)
        })
        .await
    }
}

/// The columns of a grant, in [`grant_from_row`]'s order.
const GRANT_COLUMNS: &str = "incentive, customer_id, state, claimed_at_ms, settled_at_ms, detail";

type GrantRow = (String, String, String, i64, Option<i64>, Option<String>);

fn to_grant(r: &rusqlite::Row<'_>) -> rusqlite::Result<GrantRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn from_grant_row(
    (i, c, state, claimed, settled, detail): GrantRow,
) -> Result<IncentiveGrant, LinkStoreError> {
    grant_from_row(i, c, &state, claimed, settled, detail)
}

fn grant_row(
    tx: &Transaction<'_>,
    ch: &str,
    incentive: &str,
    cust: &CustomerId,
) -> Result<Option<IncentiveGrant>, LinkStoreError> {
    let sql = format!(
        "SELECT {GRANT_COLUMNS} FROM enishi_link_incentives
         WHERE channel = ?1 AND incentive = ?2 AND customer_id = ?3"
    );
    let row = tx
        .prepare_cached(&sql)
        .map_err(sq)?
        .query_row(params![ch, incentive, cust.as_str()], to_grant)
        .optional()
        .map_err(sq)?;
    row.map(from_grant_row).transpose()
}

#[async_trait::async_trait]
impl IncentiveLedger for SqliteLinkStore {
    async fn claim(
        &self,
        incentive: &str,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Claim, LinkStoreError> {
        check_incentive(incentive)?;
        let grant = IncentiveGrant::claimed(incentive, customer, now);
        self.run(move |tx, ch| {
            let n = tx
                .prepare_cached(
                    "INSERT INTO enishi_link_incentives
                     (channel, incentive, customer_id, state, claimed_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (channel, incentive, customer_id) DO NOTHING",
                )
                .map_err(sq)?
                .execute(params![
                    ch,
                    grant.incentive,
                    grant.customer.as_str(),
                    grant.state.as_str(),
                    grant.claimed_at.timestamp_millis(),
                ])
                .map_err(sq)?;
            if n == 1 {
                return Ok(Claim::New(grant));
            }
            // The transaction is IMMEDIATE: the row that refused the insert is still there.
            grant_row(tx, ch, &grant.incentive, &grant.customer)?
                .map(Claim::existing)
                .ok_or_else(|| LinkStoreError::Corrupt("a claim refused by no record".into()))
        })
        .await
    }

    async fn settle(
        &self,
        incentive: &str,
        customer: &CustomerId,
        state: GrantState,
        detail: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<IncentiveGrant, LinkStoreError> {
        check_settle(incentive, state, detail)?;
        let (incentive, cust) = (incentive.to_owned(), customer.clone());
        let detail = detail.map(str::to_owned);
        self.run(move |tx, ch| {
            let sql = format!(
                "UPDATE enishi_link_incentives SET state = ?4, settled_at_ms = ?5, detail = ?6
                 WHERE channel = ?1 AND incentive = ?2 AND customer_id = ?3
                   AND state = 'claimed'
                 RETURNING {GRANT_COLUMNS}"
            );
            let settled = tx
                .prepare_cached(&sql)
                .map_err(sq)?
                .query_row(
                    params![
                        ch,
                        incentive,
                        cust.as_str(),
                        state.as_str(),
                        now.timestamp_millis(),
                        detail
                    ],
                    to_grant,
                )
                .optional()
                .map_err(sq)?;
            match settled {
                Some(row) => from_grant_row(row),
                None => {
                    let found = grant_row(tx, ch, &incentive, &cust)?;
                    Err(no_claim(&incentive, &cust, found.as_ref()))
                }
            }
        })
        .await
    }

    async fn release(&self, incentive: &str, customer: &CustomerId) -> Result<(), LinkStoreError> {
        check_incentive(incentive)?;
        let (incentive, cust) = (incentive.to_owned(), customer.clone());
        self.run(move |tx, ch| {
            let n = tx
                .prepare_cached(
                    "DELETE FROM enishi_link_incentives
                     WHERE channel = ?1 AND incentive = ?2 AND customer_id = ?3
                       AND state = 'claimed'",
                )
                .map_err(sq)?
                .execute(params![ch, incentive, cust.as_str()])
                .map_err(sq)?;
            match grant_row(tx, ch, &incentive, &cust)? {
                Some(g) if n == 0 => Err(no_claim(&incentive, &cust, Some(&g))),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn grant_of(
        &self,
        incentive: &str,
        customer: &CustomerId,
    ) -> Result<Option<IncentiveGrant>, LinkStoreError> {
        check_incentive(incentive)?;
        let (incentive, cust) = (incentive.to_owned(), customer.clone());
        self.run(move |tx, ch| grant_row(tx, ch, &incentive, &cust)).await
    }

    async fn unsettled(
        &self,
        older_than: DateTime<Utc>,
    ) -> Result<Vec<IncentiveGrant>, LinkStoreError> {
        let before = older_than.timestamp_millis();
        self.run(move |tx, ch| {
            let sql = format!(
                "SELECT {GRANT_COLUMNS} FROM enishi_link_incentives
                 WHERE channel = ?1 AND state = 'claimed' AND claimed_at_ms < ?2
                 ORDER BY claimed_at_ms, incentive, customer_id"
            );
            let rows = tx
                .prepare_cached(&sql)
                .map_err(sq)?
                .query_map(params![ch, before], to_grant)
                .map_err(sq)?
                .collect::<Result<Vec<GrantRow>, _>>()
                .map_err(sq)?;
            rows.into_iter().map(from_grant_row).collect()
        })
        .await
    }
}
