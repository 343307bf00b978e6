//! PostgreSQL link store (feature `postgres`).

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use tokio_postgres::{Client, Row, Transaction};

use super::incentive::{
    Claim, GrantState, IncentiveGrant, IncentiveLedger, check_incentive, check_settle,
    grant_from_row, no_claim,
};
use super::secret::TicketKey;
use super::store::{
    AuditAction, AuditRecord, ConflictPolicy, CustomerLink, FollowStatus, Link, LinkOutcome,
    LinkSource, LinkStore, LinkStoreError, Redeemed, TICKET_GRACE_MS, Ticket, TicketKind,
    check_ticket, customer, failed_audit, from_ms, plan_link, unlink_audit, user,
};
use crate::{CustomerId, LineUserId};

const BACKEND: &str = "postgres";

fn pg(e: tokio_postgres::Error) -> LinkStoreError {
    LinkStoreError::backend(BACKEND, e)
}

/// Schema migrations, applied in order by [`crate::postgres::migrate`] and recorded in
/// `<schema>.enishi_link_migrations`. `{s}` is replaced by the schema name.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE {s}.enishi_links (
        channel TEXT NOT NULL,
        line_user_id TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        source TEXT NOT NULL,
        linked_at_ms BIGINT NOT NULL,
        PRIMARY KEY (channel, line_user_id),
        UNIQUE (channel, customer_id)
    );
    CREATE TABLE {s}.enishi_link_tickets (
        channel TEXT NOT NULL,
        key TEXT NOT NULL,
        kind TEXT NOT NULL,
        customer_id TEXT,
        line_user_id TEXT,
        data TEXT,
        created_at_ms BIGINT NOT NULL,
        expires_at_ms BIGINT NOT NULL,
        consumed_at_ms BIGINT,
        PRIMARY KEY (channel, key)
    );
    CREATE TABLE {s}.enishi_link_follow (
        channel TEXT NOT NULL,
        line_user_id TEXT NOT NULL,
        following BOOLEAN NOT NULL,
        updated_at_ms BIGINT NOT NULL,
        PRIMARY KEY (channel, line_user_id)
    );
    CREATE TABLE {s}.enishi_link_audit (
        id BIGSERIAL PRIMARY KEY,
        channel TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        action TEXT NOT NULL,
        line_user_id TEXT,
        customer_id TEXT,
        source TEXT,
        detail TEXT
    );",
    "CREATE TABLE {s}.enishi_link_incentives (
        channel TEXT NOT NULL,
        incentive TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        state TEXT NOT NULL,
        claimed_at_ms BIGINT NOT NULL,
        settled_at_ms BIGINT,
        detail TEXT,
        PRIMARY KEY (channel, incentive, customer_id)
    );
    CREATE INDEX enishi_link_incentives_unsettled
        ON {s}.enishi_link_incentives (channel, claimed_at_ms) WHERE state = 'claimed';",
];

/// A link store (and [`IncentiveLedger`]) in PostgreSQL tables under one schema.
///
/// Migrations are applied on connect (under an advisory lock, so concurrent starts are safe).
/// Every write is a transaction that first takes a transaction-scoped advisory lock for the
/// schema and channel, so any number of processes sharing the database agree on exactly one
/// winner per ticket and per link. The incentive ledger needs no lock: a claim is one
/// `INSERT … ON CONFLICT DO NOTHING` on the table's primary key, a settle one conditional
/// `UPDATE`. Each call checks a connection out of a pool
/// ([`crate::postgres`]), so calls run in parallel and a lost connection is replaced; a call
/// that fails on a lost connection returns [`LinkStoreError::Backend`] and wrote nothing.
#[derive(Clone)]
pub struct PostgresLinkStore {
    pool: Pool,
    schema: Arc<str>,
    channel: Arc<str>,
}

impl fmt::Debug for PostgresLinkStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresLinkStore")
            .field("schema", &self.schema)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// Schema names are input we own: lowercase identifiers only, so they never need quoting.
fn check_schema(schema: &str) -> Result<(), LinkStoreError> {
    if crate::postgres::is_valid_schema_name(schema) {
        Ok(())
    } else {
        Err(LinkStoreError::InvalidConfig {
            what: "schema name",
            value: schema.to_owned(),
            reason: crate::postgres::SCHEMA_NAME_RULE,
        })
    }
}

impl PostgresLinkStore {
    /// Makes a pool of connections to `url` ([`crate::postgres::pool`], without TLS: use
    /// [`PostgresLinkStore::from_pool`] with your own pool for TLS or to share one) and
    /// migrates `schema`.
    ///
    /// # Errors
    /// As [`PostgresLinkStore::from_pool`], or [`LinkStoreError::InvalidConfig`] for a URL
    /// that is not a connection string.
    pub async fn connect(url: &str, schema: &str, channel: &str) -> Result<Self, LinkStoreError> {
        check_schema(schema)?;
        let pool = crate::postgres::pool(url).map_err(|_| LinkStoreError::InvalidConfig {
            what: "PostgreSQL URL",
            value: String::new(),
            reason: "expected a PostgreSQL connection string",
        })?;
        Self::from_pool(pool, schema, channel).await
    }

    /// Uses connections from `pool` (shared with other stores, if you like): creates `schema`
    /// if needed and applies pending migrations.
    ///
    /// # Errors
    /// [`LinkStoreError::InvalidConfig`] for a schema outside `[a-z_][a-z0-9_]*` (≤ 63 bytes)
    /// or an empty channel; [`LinkStoreError::Backend`] when PostgreSQL fails or cannot be
    /// reached.
    pub async fn from_pool(
        pool: Pool,
        schema: &str,
        channel: &str,
    ) -> Result<Self, LinkStoreError> {
        check_schema(schema)?;
        if channel.is_empty() {
            return Err(LinkStoreError::InvalidConfig {
                what: "channel",
                value: String::new(),
                reason: "expected the LINE channel ID",
            });
        }
        let mut client = pool.get().await.map_err(|e| LinkStoreError::backend(BACKEND, e))?;
        crate::postgres::migrate(&mut client, schema, "enishi_link", MIGRATIONS)
            .await
            .map_err(|e| LinkStoreError::backend(BACKEND, e))?;
        drop(client);
        Ok(Self { pool, schema: schema.into(), channel: channel.into() })
    }

    async fn client(&self) -> Result<Object, LinkStoreError> {
        self.pool.get().await.map_err(|e| LinkStoreError::backend(BACKEND, e))
    }

    fn t(&self, table: &str) -> String {
        format!("{}.{table}", self.schema)
    }

    /// Begins a transaction holding this schema+channel's advisory lock.
    async fn begin<'c>(&self, client: &'c mut Client) -> Result<Transaction<'c>, LinkStoreError> {
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("enishi_link:{}:{}", self.schema, self.channel)],
        )
        .await
        .map_err(pg)?;
        Ok(tx)
    }

    async fn read(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, LinkStoreError> {
        self.client().await?.query(sql, params).await.map_err(pg)
    }

    async fn link_where(
        &self,
        tx: &Transaction<'_>,
        column: &str,
        value: &str,
    ) -> Result<Option<Link>, LinkStoreError> {
        let sql = format!(
            "SELECT line_user_id, customer_id, source, linked_at_ms FROM {}
             WHERE channel = $1 AND {column} = $2",
            self.t("enishi_links")
        );
        tx.query_opt(&sql, &[&&*self.channel, &value]).await.map_err(pg)?.map(to_link).transpose()
    }

    async fn insert_audit(
        &self,
        tx: &Transaction<'_>,
        a: &AuditRecord,
    ) -> Result<(), LinkStoreError> {
        tx.execute(
            &format!(
                "INSERT INTO {} (channel, at_ms, action, line_user_id, customer_id, source, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                self.t("enishi_link_audit")
            ),
            &[
                &&*self.channel,
                &a.at.timestamp_millis(),
                &a.action.as_str(),
                &a.line_user.as_ref().map(LineUserId::as_str),
                &a.customer.as_ref().map(CustomerId::as_str),
                &a.source.map(LinkSource::as_str),
                &a.detail,
            ],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn delete_link(
        &self,
        tx: &Transaction<'_>,
        u: &LineUserId,
    ) -> Result<(), LinkStoreError> {
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE channel = $1 AND line_user_id = $2",
                self.t("enishi_links")
            ),
            &[&&*self.channel, &u.as_str()],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn do_link(
        &self,
        tx: &Transaction<'_>,
        u: &LineUserId,
        c: &CustomerId,
        source: LinkSource,
        policy: ConflictPolicy,
        now: DateTime<Utc>,
    ) -> Result<LinkOutcome, LinkStoreError> {
        let by_user = self.link_where(tx, "line_user_id", u.as_str()).await?;
        let by_customer =
            self.link_where(tx, "customer_id", c.as_str()).await?.filter(|l| &l.line_user != u);
        let plan = plan_link(by_user, by_customer, u, c, source, policy, now);
        for l in &plan.delete {
            self.delete_link(tx, &l.line_user).await?;
        }
        if let Some(l) = &plan.insert {
            tx.execute(
                &format!(
                    "INSERT INTO {} (channel, line_user_id, customer_id, source, linked_at_ms)
                     VALUES ($1, $2, $3, $4, $5)",
                    self.t("enishi_links")
                ),
                &[
                    &&*self.channel,
                    &l.line_user.as_str(),
                    &l.customer.as_str(),
                    &l.source.as_str(),
                    &l.linked_at.timestamp_millis(),
                ],
            )
            .await
            .map_err(pg)?;
        }
        for a in &plan.audit {
            self.insert_audit(tx, a).await?;
        }
        plan.outcome.map_err(LinkStoreError::Conflict)
    }

    async fn take(
        &self,
        tx: &Transaction<'_>,
        kind: TicketKind,
        key: &TicketKey,
        line_user: Option<&LineUserId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket, LinkStoreError> {
        let row = tx
            .query_opt(
                &format!(
                    "SELECT kind, customer_id, line_user_id, data, created_at_ms, expires_at_ms,
                     consumed_at_ms FROM {} WHERE channel = $1 AND key = $2",
                    self.t("enishi_link_tickets")
                ),
                &[&&*self.channel, &key.as_str()],
            )
            .await
            .map_err(pg)?;
        let row = match row {
            None => None,
            Some(r) => Some((
                Ticket {
                    kind: TicketKind::parse(r.get(0))?,
                    key: key.clone(),
                    customer: r.get::<_, Option<String>>(1).map(customer).transpose()?,
                    line_user: r.get::<_, Option<String>>(2).map(user).transpose()?,
                    data: r.get(3),
                    created_at: from_ms(r.get(4)),
                    expires_at: from_ms(r.get(5)),
                },
                r.get::<_, Option<i64>>(6),
            )),
        };
        let ticket = check_ticket(kind, row, line_user, now)?;
        tx.execute(
            &format!(
                "UPDATE {} SET consumed_at_ms = $3 WHERE channel = $1 AND key = $2",
                self.t("enishi_link_tickets")
            ),
            &[&&*self.channel, &key.as_str(), &now.timestamp_millis()],
        )
        .await
        .map_err(pg)?;
        Ok(ticket)
    }

    async fn unlink_where(
        &self,
        column: &'static str,
        value: String,
        now: DateTime<Utc>,
    ) -> Result<Option<Link>, LinkStoreError> {
        let mut client = self.client().await?;
        let tx = self.begin(&mut client).await?;
        let value = async {
            let link = self.link_where(&tx, column, &value).await?;
            if let Some(l) = &link {
                self.delete_link(&tx, &l.line_user).await?;
                self.insert_audit(&tx, &unlink_audit(l, now)).await?;
            }
            Ok(link)
        }
        .await;
        finish(tx, value).await
    }

    async fn read_link(&self, column: &str, value: &str) -> Result<Option<Link>, LinkStoreError> {
        let sql = format!(
            "SELECT line_user_id, customer_id, source, linked_at_ms FROM {}
             WHERE channel = $1 AND {column} = $2",
            self.t("enishi_links")
        );
        self.read(&sql, &[&&*self.channel, &value])
            .await?
            .into_iter()
            .next()
            .map(to_link)
            .transpose()
    }
}

/// Commits on success and on a conflict (its audit record and consumed nonce persist);
/// otherwise rolls back so nothing is half-written.
async fn finish<T>(
    tx: Transaction<'_>,
    value: Result<T, LinkStoreError>,
) -> Result<T, LinkStoreError> {
    if matches!(value, Ok(_) | Err(LinkStoreError::Conflict(_))) {
        tx.commit().await.map_err(pg)?;
    } else {
        tx.rollback().await.map_err(pg)?;
    }
    value
}

fn to_link(r: Row) -> Result<Link, LinkStoreError> {
    Ok(Link::new(
        user(r.get(0))?,
        customer(r.get(1))?,
        LinkSource::parse(r.get(2))?,
        from_ms(r.get(3)),
    ))
}

#[async_trait::async_trait]
impl LinkStore for PostgresLinkStore {
    async fn put_ticket(&self, ticket: &Ticket) -> Result<(), LinkStoreError> {
        let sql = format!(
            "INSERT INTO {} (channel, key, kind, customer_id, line_user_id, data, created_at_ms,
             expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (channel, key) DO NOTHING",
            self.t("enishi_link_tickets")
        );
        let n = self
            .client()
            .await?
            .execute(
                &sql,
                &[
                    &&*self.channel,
                    &ticket.key.as_str(),
                    &ticket.kind.as_str(),
                    &ticket.customer.as_ref().map(CustomerId::as_str),
                    &ticket.line_user.as_ref().map(LineUserId::as_str),
                    &ticket.data,
                    &ticket.created_at.timestamp_millis(),
                    &ticket.expires_at.timestamp_millis(),
                ],
            )
            .await
            .map_err(pg)?;
        if n == 0 { Err(LinkStoreError::DuplicateTicket(ticket.kind)) } else { Ok(()) }
    }

    async fn take_ticket(
        &self,
        kind: TicketKind,
        key: &TicketKey,
        line_user: Option<&LineUserId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket, LinkStoreError> {
        let mut client = self.client().await?;
        let tx = self.begin(&mut client).await?;
        let value = self.take(&tx, kind, key, line_user, now).await;
        finish(tx, value).await
    }

    async fn peek_ticket(
        &self,
        kind: TicketKind,
        key: &TicketKey,
        line_user: Option<&LineUserId>,
        now: DateTime<Utc>,
    ) -> Result<Ticket, LinkStoreError> {
        let mut client = self.client().await?;
        let tx = self.begin(&mut client).await?;
        // The very checks of a take, rolled back: nothing is consumed.
        let value = self.take(&tx, kind, key, line_user, now).await;
        tx.rollback().await.map_err(pg)?;
        value
    }

    async fn redeem_nonce(
        &self,
        key: &TicketKey,
        line_user: &LineUserId,
        policy: ConflictPolicy,
        now: DateTime<Utc>,
    ) -> Result<Redeemed, LinkStoreError> {
        let mut client = self.client().await?;
        let tx = self.begin(&mut client).await?;
        let value = async {
            let ticket = self.take(&tx, TicketKind::Nonce, key, Some(line_user), now).await?;
            let Some(cust) = ticket.customer.clone() else {
                return Err(LinkStoreError::Corrupt("a nonce without a customer".into()));
            };
            let outcome =
                self.do_link(&tx, line_user, &cust, LinkSource::AccountLink, policy, now).await?;
            Ok(Redeemed { ticket, outcome })
        }
        .await;
        finish(tx, value).await
    }

    async fn fail_nonce(
        &self,
        key: &TicketKey,
        now: DateTime<Utc>,
    ) -> Result<Ticket, LinkStoreError> {
        let mut client = self.client().await?;
        let tx = self.begin(&mut client).await?;
        let value = async {
            let ticket = self.take(&tx, TicketKind::Nonce, key, None, now).await?;
            self.insert_audit(&tx, &failed_audit(&ticket, now)).await?;
            Ok(ticket)
        }
        .await;
        finish(tx, value).await
    }

    async fn link(
        &self,
        line_user: &LineUserId,
        customer: &CustomerId,
        source: LinkSource,
        policy: ConflictPolicy,
        now: DateTime<Utc>,
    ) -> Result<LinkOutcome, LinkStoreError> {
        let mut client = self.client().await?;
        let tx = self.begin(&mut client).await?;
        let value = self.do_link(&tx, line_user, customer, source, policy, now).await;
        finish(tx, value).await
    }

    async fn unlink_user(
        &self,
        line_user: &LineUserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Link>, LinkStoreError> {
        self.unlink_where("line_user_id", line_user.as_str().to_owned(), now).await
    }

    async fn unlink_customer(
        &self,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Option<Link>, LinkStoreError> {
        self.unlink_where("customer_id", customer.as_str().to_owned(), now).await
    }

    async fn link_of_user(&self, line_user: &LineUserId) -> Result<Option<Link>, LinkStoreError> {
        self.read_link("line_user_id", line_user.as_str()).await
    }

    async fn link_of_customer(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<Link>, LinkStoreError> {
        self.read_link("customer_id", customer.as_str()).await
    }

    async fn links_of_customers(
        &self,
        customers: &[CustomerId],
    ) -> Result<Vec<CustomerLink>, LinkStoreError> {
        let sql = format!(
            "SELECT l.line_user_id, l.customer_id, l.source, l.linked_at_ms,
                    f.following, f.updated_at_ms
             FROM {links} l
             LEFT JOIN {follow} f ON f.channel = l.channel AND f.line_user_id = l.line_user_id
             WHERE l.channel = $1 AND l.customer_id = ANY($2)",
            links = self.t("enishi_links"),
            follow = self.t("enishi_link_follow"),
        );
        let ids: Vec<&str> = customers.iter().map(CustomerId::as_str).collect();
        let rows = self.read(&sql, &[&&*self.channel, &ids]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let follow = match (row.get::<_, Option<bool>>(4), row.get::<_, Option<i64>>(5)) {
                (Some(following), Some(at)) => {
                    Some(FollowStatus { following, updated_at: from_ms(at) })
                }
                _ => None,
            };
            out.push(CustomerLink::new(to_link(row)?, follow));
        }
        Ok(out)
    }

    async fn set_following(
        &self,
        line_user: &LineUserId,
        following: bool,
        at: DateTime<Utc>,
    ) -> Result<(), LinkStoreError> {
        let sql = format!(
            "INSERT INTO {t} AS f (channel, line_user_id, following, updated_at_ms)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (channel, line_user_id) DO UPDATE
             SET following = EXCLUDED.following, updated_at_ms = EXCLUDED.updated_at_ms
             WHERE EXCLUDED.updated_at_ms >= f.updated_at_ms",
            t = self.t("enishi_link_follow")
        );
        self.client()
            .await?
            .execute(
                &sql,
                &[&&*self.channel, &line_user.as_str(), &following, &at.timestamp_millis()],
            )
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn follow_status(
        &self,
        line_user: &LineUserId,
    ) -> Result<Option<FollowStatus>, LinkStoreError> {
        let sql = format!(
            "SELECT following, updated_at_ms FROM {} WHERE channel = $1 AND line_user_id = $2",
            self.t("enishi_link_follow")
        );
        Ok(self
            .read(&sql, &[&&*self.channel, &line_user.as_str()])
            .await?
            .into_iter()
            .next()
            .map(|r| FollowStatus { following: r.get(0), updated_at: from_ms(r.get(1)) }))
    }

    async fn audit_trail(&self, limit: usize) -> Result<Vec<AuditRecord>, LinkStoreError> {
        let sql = format!(
            "SELECT at_ms, action, line_user_id, customer_id, source, detail FROM {}
             WHERE channel = $1 ORDER BY id DESC LIMIT $2",
            self.t("enishi_link_audit")
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(&sql, &[&&*self.channel, &limit])
            .await?
            .into_iter()
            .map(|r| {
                let mut a = AuditRecord::new(from_ms(r.get(0)), AuditAction::parse(r.get(1))?);
                a.line_user = r.get::<_, Option<String>>(2).map(user).transpose()?;
                a.customer = r.get::<_, Option<String>>(3).map(customer).transpose()?;
                a.source = r.get::<_, Option<&str>>(4).map(LinkSource::parse).transpose()?;
                a.detail = r.get(5);
                Ok(a)
            })
            .collect()
    }

    async fn purge_tickets(&self, now: DateTime<Utc>) -> Result<u64, LinkStoreError> {
        let cutoff = now.timestamp_millis().saturating_sub(TICKET_GRACE_MS);
        let sql = format!(
            "DELETE FROM {} WHERE channel = $1 AND (expires_at_ms <= $2 OR consumed_at_ms <= $2)",
            self.t("enishi_link_tickets")
        );
        self.client().await?.execute(&sql, &[&&*self.channel, &cutoff]).await.map_err(pg)
    }
}

/// The columns of a grant, in [`to_grant`]'s order.
const GRANT_COLUMNS: &str = "incentive, customer_id, state, claimed_at_ms, settled_at_ms, detail";

/// How often a claim retries when the record that refused its insert is released before it
/// can be read (each retry means another caller made progress).
const CLAIM_ATTEMPTS: usize = 8;

fn to_grant(r: &Row) -> Result<IncentiveGrant, LinkStoreError> {
    grant_from_row(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))
}

impl PostgresLinkStore {
    async fn grant_row(
        &self,
        client: &Client,
        incentive: &str,
        customer: &CustomerId,
    ) -> Result<Option<IncentiveGrant>, LinkStoreError> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM {} WHERE channel = $1 AND incentive = $2
             AND customer_id = $3",
            self.t("enishi_link_incentives")
        );
        let row = client
            .query_opt(&sql, &[&&*self.channel, &incentive, &customer.as_str()])
            .await
            .map_err(pg)?;
        row.as_ref().map(to_grant).transpose()
    }
}

#[async_trait::async_trait]
impl IncentiveLedger for PostgresLinkStore {
    async fn claim(
        &self,
        incentive: &str,
        customer: &CustomerId,
        now: DateTime<Utc>,
    ) -> Result<Claim, LinkStoreError> {
        check_incentive(incentive)?;
        let grant = IncentiveGrant::claimed(incentive, customer, now);
        let sql = format!(
            "INSERT INTO {} (channel, incentive, customer_id, state, claimed_at_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (channel, incentive, customer_id) DO NOTHING",
            self.t("enishi_link_incentives")
        );
        let client = self.client().await?;
        for _ in 0..CLAIM_ATTEMPTS {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
                &&*self.channel,
                &incentive,
                &customer.as_str(),
                &grant.state.as_str(),
                &grant.claimed_at.timestamp_millis(),
            ];
            if client.execute(&sql, &params).await.map_err(pg)? == 1 {
                return Ok(Claim::New(grant));
            }
            // Another caller holds (or settled) it; `None` when it was released in between.
            if let Some(existing) = self.grant_row(&client, incentive, customer).await? {
                return Ok(Claim::existing(existing));
            }
        }
        Err(LinkStoreError::backend(
            BACKEND,
            format!("the claim kept losing to releases {CLAIM_ATTEMPTS} times"),
        ))
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
        let sql = format!(
            "UPDATE {} SET state = $4, settled_at_ms = $5, detail = $6
             WHERE channel = $1 AND incentive = $2 AND customer_id = $3 AND state = 'claimed'
             RETURNING {GRANT_COLUMNS}",
            self.t("enishi_link_incentives")
        );
        let client = self.client().await?;
        let row = client
            .query_opt(
                &sql,
                &[
                    &&*self.channel,
                    &incentive,
                    &customer.as_str(),
                    &state.as_str(),
                    &now.timestamp_millis(),
                    &detail,
                ],
            )
            .await
            .map_err(pg)?;
        match row {
            Some(r) => to_grant(&r),
            None => {
                let found = self.grant_row(&client, incentive, customer).await?;
                Err(no_claim(incentive, customer, found.as_ref()))
            }
        }
    }

    async fn release(&self, incentive: &str, customer: &CustomerId) -> Result<(), LinkStoreError> {
        check_incentive(incentive)?;
        let sql = format!(
            "DELETE FROM {} WHERE channel = $1 AND incentive = $2 AND customer_id = $3
             AND state = 'claimed'",
            self.t("enishi_link_incentives")
        );
        let client = self.client().await?;
        let n = client
            .execute(&sql, &[&&*self.channel, &incentive, &customer.as_str()])
            .await
            .map_err(pg)?;
        if n == 0
            && let Some(g) = self.grant_row(&client, incentive, customer).await?
            && g.state.is_settled()
        {
            return Err(no_claim(incentive, customer, Some(&g)));
        }
        Ok(())
    }

    async fn grant_of(
        &self,
        incentive: &str,
        customer: &CustomerId,
    ) -> Result<Option<IncentiveGrant>, LinkStoreError> {
        check_incentive(incentive)?;
        let client = self.client().await?;
        self.grant_row(&client, incentive, customer).await
    }

    async fn unsettled(
        &self,
        older_than: DateTime<Utc>,
    ) -> Result<Vec<IncentiveGrant>, LinkStoreError> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM {} WHERE channel = $1 AND state = 'claimed'
             AND claimed_at_ms < $2
             ORDER BY claimed_at_ms, incentive COLLATE \"C\", customer_id COLLATE \"C\"",
            self.t("enishi_link_incentives")
        );
        let rows = self.read(&sql, &[&&*self.channel, &older_than.timestamp_millis()]).await?;
        rows.iter().map(to_grant).collect()
    }
}
