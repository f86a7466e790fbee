//! Blue/green rebuilds (as Marten's projection versions): a projection is replayed from the
//! first event into fresh copies of its [`Projection::tables`] in a shadow schema
//! (`x8_rebuild_<name>`) while the live tables keep answering; once the copy has caught up,
//! one transaction under the projection's lock applies the last events, drops the live
//! tables, moves the copies in and sets the checkpoint. Readers see the old model or the
//! new one, never an empty or half-built one.
//!
//! - The copies are `like … including all` (columns, defaults, checks), with the keys and
//!   indexes re-created under their live names, plus the foreign keys between the
//!   projection's own tables, re-pointed at the copies.
//! - The replay runs with `search_path = shadow, live`: the projection's unqualified table
//!   names resolve to the copies, everything else (the event log, the checkpoints) to the
//!   live schema. A projection without tables (the deadline schedule) thus replays into its
//!   live table, whose inserts never schedule twice.
//! - Rebuilding several projections reads the log once: each batch is applied to every
//!   projection's copies side by side ([`ProjectionRunner::rebuild_all`]).
//! - A crash or an error before the swap leaves the live model untouched; the next rebuild
//!   drops the stale shadow schema. One rebuild per projection at a time (a session
//!   advisory lock).

use crate::projection::{Projection, ProjectionError};
use crate::runner::ProjectionRunner;
use sqlx::PgConnection;
use std::time::Instant;
use x8_eventstore::{Checkpoint, RecordedEvent};

/// Events per transaction while replaying into the copies.
const REBUILD_BATCH: i64 = 5_000;

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RebuildReport {
    /// Events of the log replayed (the projection skips those it does not care about).
    pub events: u64,
    /// Wall time from start to swap, in seconds.
    pub seconds: f64,
}

impl RebuildReport {
    /// Events replayed per second.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }
}

/// The live and shadow schema of one rebuild.
struct Schemas {
    live: String,
    shadow: String,
}

/// Read models built apart from the live ones by [`ProjectionRunner::build_scratch`].
pub struct Scratch(Schemas);

impl Scratch {
    /// The `search_path` that reads the scratch tables first, then the live schema (for
    /// everything the scratch schema does not have), e.g. `x8_scratch_1f2e,public`: no
    /// quotes or spaces, so it also passes as a connection option.
    pub fn search_path(&self) -> String {
        let Schemas { live, shadow } = &self.0;
        format!("{shadow},{live}")
    }
}

/// A name safe to put in SQL as a schema or table name.
fn plain_identifier(name: &str) -> Result<(), ProjectionError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(ProjectionError::Other(format!(
            "{name:?} is not a plain identifier"
        )));
    }
    Ok(())
}

impl ProjectionRunner {
    /// Rebuilds `projection` blue/green (see the module docs), calling `progress` with the
    /// number of events replayed so far after each batch.
    ///
    /// # Errors
    /// As [`Self::rebuild_all`].
    pub async fn rebuild(
        &self,
        projection: &dyn Projection,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<RebuildReport, ProjectionError> {
        self.rebuild_all(&[projection], progress).await
    }

    /// Rebuilds `projections` blue/green together (see the module docs): the log is read
    /// once and each batch applied to every projection's copies side by side, each in its
    /// own transaction; then each is caught up and swapped in on its own. `progress` gets
    /// the events of the log replayed so far; the report counts them once (the
    /// projections each applied all of them).
    ///
    /// # Errors
    /// [`ProjectionError::Other`] when another rebuild of one of them is running or a name
    /// is not a plain identifier; any other [`ProjectionError`] from the replay. A live
    /// read model is untouched unless its own rebuild succeeded; none is swapped before
    /// every replay has caught up.
    pub async fn rebuild_all(
        &self,
        projections: &[&dyn Projection],
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<RebuildReport, ProjectionError> {
        let started = Instant::now();
        let mut builds = Vec::with_capacity(projections.len());
        for projection in projections {
            let name = projection.name();
            plain_identifier(name)?;
            let guard = self.exclusive_rebuild(name).await?;
            let schemas = self.fresh_schema(format!("x8_rebuild_{name}")).await?;
            self.copy_tables(*projection, &schemas).await?;
            builds.push((*projection, schemas, guard));
        }
        let targets: Vec<(&dyn Projection, &Schemas)> = builds
            .iter()
            .map(|(projection, schemas, _)| (*projection, schemas))
            .collect();
        let (shared, replayed) = self.replay_into(&targets, progress).await?;

        let mut events = replayed;
        for (projection, schemas) in targets {
            let mut tx = self.store.pool().begin().await?;
            // language=PostgreSQL
            sqlx::query("select pg_advisory_xact_lock(hashtext('x8.projection'), hashtext($1))")
                .bind(projection.name())
                .execute(&mut *tx)
                .await?;
            use_shadow(&mut tx, schemas).await?;
            let mut checkpoint = shared;
            let mut caught_up = replayed;
            loop {
                let applied = self
                    .replay_batch(&mut tx, projection, &mut checkpoint)
                    .await?;
                caught_up += applied;
                if applied == 0 {
                    break;
                }
            }
            swap(&mut tx, projection, schemas, checkpoint).await?;
            tx.commit().await?;
            events = events.max(caught_up);
        }
        progress(events);
        Ok(RebuildReport {
            events,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Holds the projection's rebuild lock (a session advisory lock on a connection kept
    /// for the rebuild's duration).
    async fn exclusive_rebuild(&self, name: &str) -> Result<PgConnection, ProjectionError> {
        let mut conn = self.store.pool().acquire().await?.detach();
        // language=PostgreSQL
        let (locked,): (bool,) =
            sqlx::query_as("select pg_try_advisory_lock(hashtext('x8.rebuild'), hashtext($1))")
                .bind(name)
                .fetch_one(&mut conn)
                .await?;
        if !locked {
            return Err(ProjectionError::Other(format!(
                "a rebuild of {name} is already running"
            )));
        }
        // The lock goes with the session, and the connection is detached from the pool: it
        // is closed when dropped (releasing the lock), never reused still holding it.
        Ok(conn)
    }

    /// Builds the read models of `projections` from the whole log into `schema` (created
    /// empty; an existing one of that name is dropped first), leaving the live model alone:
    /// for reading a model as the events define it today (`x8-replay metrics`) without a
    /// swap. Read it through [`Scratch::search_path`]; [`Self::drop_scratch`] when done.
    /// `progress` gets the events replayed so far.
    ///
    /// # Errors
    /// [`ProjectionError::Other`] when `schema` is not a plain identifier; any other
    /// [`ProjectionError`] from the replay (the schema is dropped again).
    pub async fn build_scratch(
        &self,
        projections: &[&dyn Projection],
        schema: &str,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Scratch, ProjectionError> {
        plain_identifier(schema)?;
        let scratch = Scratch(self.fresh_schema(schema.to_string()).await?);
        let built = async {
            for projection in projections {
                self.copy_tables(*projection, &scratch.0).await?;
            }
            let targets: Vec<(&dyn Projection, &Schemas)> = projections
                .iter()
                .map(|projection| (*projection, &scratch.0))
                .collect();
            self.replay_into(&targets, progress).await
        };
        match built.await {
            Ok(_) => Ok(scratch),
            Err(e) => {
                // Leave nothing half built behind.
                self.drop_scratch(scratch).await?;
                Err(e)
            }
        }
    }

    /// Drops a schema [`Self::build_scratch`] made, with its tables.
    ///
    /// # Errors
    /// The database fails.
    pub async fn drop_scratch(&self, scratch: Scratch) -> Result<(), ProjectionError> {
        let shadow = &scratch.0.shadow;
        // language=PostgreSQL
        sqlx::query(&format!(r#"drop schema if exists "{shadow}" cascade"#))
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// Creates schema `shadow` empty (dropping a stale one of that name) beside the live
    /// schema.
    async fn fresh_schema(&self, shadow: String) -> Result<Schemas, ProjectionError> {
        let mut tx = self.store.pool().begin().await?;
        // language=PostgreSQL
        let live: String = sqlx::query_scalar("select current_schema()")
            .fetch_one(&mut *tx)
            .await?;
        // language=PostgreSQL
        sqlx::query(&format!(r#"drop schema if exists "{shadow}" cascade"#))
            .execute(&mut *tx)
            .await?;
        // language=PostgreSQL
        sqlx::query(&format!(r#"create schema "{shadow}""#))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Schemas { live, shadow })
    }

    /// Creates empty copies of the projection's tables in the shadow schema.
    async fn copy_tables(
        &self,
        projection: &dyn Projection,
        schemas: &Schemas,
    ) -> Result<(), ProjectionError> {
        let mut tx = self.store.pool().begin().await?;
        let Schemas { live, shadow } = schemas;
        let tables: Vec<String> = projection.tables().iter().map(|t| t.to_string()).collect();
        for table in &tables {
            // language=PostgreSQL
            sqlx::query(&format!(
                r#"create table "{shadow}"."{table}"
                   (like "{live}"."{table}" including all excluding indexes)"#
            ))
            .execute(&mut *tx)
            .await?;
        }
        // Keys and indexes under their live names (`like … including indexes` would name
        // them after the columns, and `on conflict on constraint <name>` would then miss).
        let keys = live_constraints(&mut tx, live, &tables, &["p", "u", "x"]).await?;
        add_constraints(&mut tx, shadow, keys).await?;
        // language=PostgreSQL
        let indexes: Vec<(String, String, bool, String)> = sqlx::query_as(
            "select t.relname::text, i.relname::text, ix.indisunique,
                    substring(pg_get_indexdef(ix.indexrelid) from ' USING (.*)$')
             from pg_index ix
             join pg_class i on i.oid = ix.indexrelid
             join pg_class t on t.oid = ix.indrelid
             join pg_namespace ns on ns.oid = t.relnamespace
             where ns.nspname = $1 and t.relname = any($2)
               and not exists (select 1 from pg_constraint co where co.conindid = ix.indexrelid)",
        )
        .bind(live)
        .bind(&tables)
        .fetch_all(&mut *tx)
        .await?;
        for (table, index, unique, method_and_columns) in indexes {
            let unique = if unique { "unique" } else { "" };
            // language=PostgreSQL
            sqlx::query(&format!(
                r#"create {unique} index "{index}" on "{shadow}"."{table}"
                   using {method_and_columns}"#
            ))
            .execute(&mut *tx)
            .await?;
        }
        // Foreign keys as the live schema prints them (unqualified names of its own
        // tables: read before the search path changes), re-created where those names
        // resolve to the copies.
        let foreign_keys = live_constraints(&mut tx, live, &tables, &["f"]).await?;
        use_shadow(&mut tx, schemas).await?;
        add_constraints(&mut tx, shadow, foreign_keys).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replays the log from the start into the shadow copies of each target, one batch of
    /// the log at a time, read and upcast once and applied to the targets side by side
    /// (each in its own committed transaction), until a batch comes back short. Returns
    /// where it stopped and how many events it read.
    async fn replay_into(
        &self,
        targets: &[(&dyn Projection, &Schemas)],
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(Checkpoint, u64), ProjectionError> {
        let mut checkpoint = Checkpoint::START;
        let mut events = 0u64;
        loop {
            let batch = self
                .read_batch(self.store.pool(), checkpoint, REBUILD_BATCH)
                .await?;
            let read = batch.events.len() as u64;
            if let Some(last) = batch.events.last() {
                checkpoint = last.checkpoint();
            }
            futures::future::try_join_all(targets.iter().map(|(projection, schemas)| {
                self.apply_to_copy(*projection, schemas, &batch.events)
            }))
            .await?;
            events += read;
            progress(events);
            if read < REBUILD_BATCH as u64 {
                return Ok((checkpoint, events));
            }
        }
    }

    /// Applies upcast `events` to the projection's copies in `schemas`, in one transaction.
    async fn apply_to_copy(
        &self,
        projection: &dyn Projection,
        schemas: &Schemas,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.pool().begin().await?;
        use_shadow(&mut tx, schemas).await?;
        // language=PostgreSQL
        sqlx::query("set local synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        self.apply_events(&mut tx, projection, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Applies the next batch after `checkpoint` through `conn` and advances it. Returns the
    /// number of events read.
    async fn replay_batch(
        &self,
        conn: &mut PgConnection,
        projection: &dyn Projection,
        checkpoint: &mut Checkpoint,
    ) -> Result<u64, ProjectionError> {
        let batch = self
            .read_batch(&mut *conn, *checkpoint, REBUILD_BATCH)
            .await?;
        let count = batch.events.len() as u64;
        if let Some(last) = batch.events.last() {
            *checkpoint = last.checkpoint();
        }
        self.apply_events(conn, projection, &batch.events).await?;
        Ok(count)
    }
}

/// The live tables' constraints of `kinds` (`pg_constraint.contype` letters, e.g. `p`,
/// `u`, `x`, `f`) as `(table, name, definition)`, definitions printed by PostgreSQL under
/// the caller's `search_path` (names it resolves are left unqualified).
async fn live_constraints(
    conn: &mut PgConnection,
    live: &str,
    tables: &[String],
    kinds: &[&str],
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    // language=PostgreSQL
    sqlx::query_as(
        "select cl.relname::text, co.conname::text, pg_get_constraintdef(co.oid)
         from pg_constraint co
         join pg_class cl on cl.oid = co.conrelid
         join pg_namespace ns on ns.oid = cl.relnamespace
         where co.contype::text = any($3) and ns.nspname = $1 and cl.relname = any($2)",
    )
    .bind(live)
    .bind(tables)
    .bind(kinds)
    .fetch_all(conn)
    .await
}

/// Adds `constraints` (from [`live_constraints`]) to the copies in `shadow`, under their
/// live names.
async fn add_constraints(
    conn: &mut PgConnection,
    shadow: &str,
    constraints: Vec<(String, String, String)>,
) -> Result<(), sqlx::Error> {
    for (table, constraint, definition) in constraints {
        // language=PostgreSQL
        sqlx::query(&format!(
            r#"alter table "{shadow}"."{table}" add constraint "{constraint}" {definition}"#
        ))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Points the transaction's unqualified names at the copies first.
async fn use_shadow(conn: &mut PgConnection, schemas: &Schemas) -> Result<(), sqlx::Error> {
    let Schemas { live, shadow } = schemas;
    // language=PostgreSQL
    sqlx::query(&format!(r#"set local search_path = "{shadow}", "{live}""#))
        .execute(conn)
        .await?;
    Ok(())
}

/// Replaces the live tables with the copies and sets the checkpoint, in the caller's
/// transaction.
async fn swap(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    schemas: &Schemas,
    checkpoint: Checkpoint,
) -> Result<(), sqlx::Error> {
    let Schemas { live, shadow } = schemas;
    for table in projection.tables().iter().rev() {
        // language=PostgreSQL
        sqlx::query(&format!(r#"drop table "{live}"."{table}""#))
            .execute(&mut *conn)
            .await?;
    }
    for table in projection.tables() {
        // language=PostgreSQL
        sqlx::query(&format!(
            r#"alter table "{shadow}"."{table}" set schema "{live}""#
        ))
        .execute(&mut *conn)
        .await?;
    }
    // language=PostgreSQL
    sqlx::query(&format!(r#"drop schema "{shadow}""#))
        .execute(&mut *conn)
        .await?;
    // language=PostgreSQL
    sqlx::query(&format!(
        r#"insert into "{live}".projection_checkpoints
               (projection_name, transaction_id, global_position, updated_at)
           values ($1, $2::text::xid8, $3, now())
           on conflict (projection_name) do update
           set transaction_id = excluded.transaction_id,
               global_position = excluded.global_position, updated_at = now()"#
    ))
    .bind(projection.name())
    .bind(checkpoint.transaction_id.to_string())
    .bind(checkpoint.global_position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
