//! Group commit for the embedded store. SQLite has one writer and, with
//! `synchronous = FULL`, one WAL fsync per commit: writes that queue while one commits
//! share the next transaction instead of paying an fsync each. Every write runs in its
//! own savepoint, so a write that fails leaves the others in its batch intact, and no
//! caller hears "ok" before the batch's COMMIT returned.
//!
//! Writes of one kind that queue side by side (a burst of deletes) can go further and
//! share their statements too ([`Merge`]): one `UPDATE ... IN (...)` and one full-text
//! delete for all of them instead of a dozen statements each. A merged run that fails is
//! rolled back and its writes are retried one by one, so one bad write still fails alone.
//!
//! The batches run on a thread of their own: a caller that goes away (a client that hung
//! up) cannot cancel other callers' writes half way, and the writer does not wait in the
//! request tasks' queues.

use std::any::{Any, TypeId};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::sqlite_checkpoint::{restart_log, LogWatch};
use super::{StoreError, StoreResult};

/// A write: runs on the writer connection inside the batch's transaction.
pub trait WriteFn<T>:
    for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static
{
}
impl<T, F> WriteFn<T> for F where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static
{
}

/// A write that can run as one with writes of its kind queued next to it.
pub trait Merge: Send + Sync + Sized + 'static {
    type Output: Send + 'static;
    /// Writes merge only when their keys are equal (say, the same catalog and user).
    fn key(&self) -> String;
    /// Runs `all` (at least one, in queue order, equal keys) as one write and answers
    /// each one's result, in that order, as running them one after the other would. An
    /// `Err` means the run is undone; each write is then run alone. A write answered
    /// with an `Err` inside an `Ok` must have changed nothing: the run is kept.
    fn run_all<'c>(
        conn: &'c mut SqliteConnection,
        all: &'c [Self],
    ) -> BoxFuture<'c, StoreResult<Vec<StoreResult<Self::Output>>>>;
    /// `run_all` as a plain function on the connection's own SQLite handle, for kinds
    /// whose statements all run there (`on_handle`): a batch that is one run of such a
    /// kind then goes whole, BEGIN to COMMIT, in one hand-off to sqlx's connection thread
    /// instead of three (each a pair of thread switches, slow to be scheduled on a busy
    /// machine).
    const ON_HANDLE: Option<OnHandle<Self>> = None;
}

/// See `Merge::ON_HANDLE`.
pub type OnHandle<M> = fn(&rusqlite::Connection, &[M]) -> StoreResult<Vec<StoreResult<<M as Merge>::Output>>>;

/// Which of the idle work's backlogs a reader waits for (`finish_idle_work`): a search
/// of the trash needs the trash sweep done, a search of records the records indexed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Owed {
    Trash,
    Records,
}

/// Work the writer does when no write has queued for a while, in chunks of a
/// transaction each, so a write that arrives waits at most for one chunk.
pub trait Idle: Send + Sync + 'static {
    /// Whether there is work left (without asking the database).
    fn wanted(&self) -> bool;
    /// Whether work that readers of `what` wait for is left (see `finish_idle_work`).
    fn owed(&self, what: Owed) -> bool;
    /// Whether so much is left that a chunk runs after every batch, idle or not.
    fn pressing(&self) -> bool;
    /// A batch of writes committed (they may have made work).
    fn wrote(&self);
    /// One chunk (of `only`'s backlog, or of whatever is next), inside a transaction;
    /// answers what to do once it committed, which runs before the writer runs anything else.
    fn run<'s: 'c, 'c>(
        &'s self,
        conn: &'c mut SqliteConnection,
        only: Option<Owed>,
    ) -> BoxFuture<'c, StoreResult<AfterCommit<'s>>>;
}

/// What an idle chunk does once it committed.
pub type AfterCommit<'c> = Box<dyn FnOnce() + Send + 'c>;

/// How long the queue stays empty before idle work runs.
const IDLE_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// Tells a caller its result once the batch's fate is known (`Err` = not committed).
type Deliver = Box<dyn FnOnce(Result<(), &str>) + Send>;
/// A type-erased write: whether it succeeded (its savepoint is kept) and its delivery.
type OneJob = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Deliver)> + Send>;
/// Runs a group of merged writes of one type (each a boxed `Pending<M>`), savepoints included.
type RunGroup = for<'c> fn(&'c mut SqliteConnection, Vec<Box<dyn Any + Send>>, bool) -> BoxFuture<'c, GroupRun>;
/// Merged writes of one type, each a boxed `Pending<M>`.
type Items = Vec<Box<dyn Any + Send>>;
/// Runs a batch that is one group of such writes as its own transaction on the handle
/// (`Merge::ON_HANDLE`); answers the deliveries and the transaction's outcome.
type RunBatchOnHandle = fn(&rusqlite::Connection, Items) -> (Vec<Deliver>, Result<(), String>);

enum Job {
    One(OneJob),
    /// Runs one backlog of the idle work to its end now, then answers.
    Finish(Owed, oneshot::Sender<StoreResult<()>>),
    Merge {
        kind: TypeId,
        key: String,
        item: Box<dyn Any + Send>,
        run: RunGroup,
        on_handle: Option<RunBatchOnHandle>,
    },
}

/// A merged write waiting in the queue, with where its answer goes.
struct Pending<M: Merge> {
    write: M,
    reply: oneshot::Sender<StoreResult<M::Output>>,
}

/// What a group left: the deliveries of its writes, and why the batch cannot go on (a
/// savepoint statement failed), if so.
#[derive(Default)]
struct GroupRun {
    delivered: Vec<Deliver>,
    broken: Option<String>,
}

/// Writes taken into one transaction at most: bounds a batch's time so the first
/// caller in it is not kept waiting behind hundreds of others.
const MAX_BATCH: usize = 64;

#[derive(Clone)]
pub struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
}

impl GroupCommit {
    /// Starts the writer task on `writer` (a pool of one connection), with the work it
    /// does when idle.
    pub fn start(
        writer: SqlitePool,
        idle: Option<std::sync::Arc<dyn Idle>>,
        log: Option<std::sync::Arc<LogWatch>>,
    ) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        // A thread of its own: as a task among the server's, every step of a batch (each
        // hand-off to the connection's thread) queued behind the request tasks of both
        // workers, and under 64 busy connections a batch took several times its work.
        let run = run_batches(writer, rx, idle, log);
        let spawned = std::thread::Builder::new().name("sqlite-writer".into()).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(run),
                Err(e) => tracing::error!(error = %e, "the writer's runtime could not start; writes fail"),
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "the writer thread could not start; writes fail");
        }
        GroupCommit { jobs }
    }

    /// Runs the idle work readers of `what` wait for (`Idle::owed`) to its end, after
    /// the writes queued before this call. Only that backlog: a search of records once
    /// waited for a sweep of 50,000 trashed assets too, and every write with it (22 s).
    pub async fn finish_idle_work(&self, what: Owed) -> StoreResult<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Finish(what, tx), rx).await
    }

    /// Runs `f` in the next batch and answers once that batch committed.
    pub async fn write<T: Send + 'static>(&self, f: impl WriteFn<T>) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel::<StoreResult<T>>();
        let job: OneJob = Box::new(move |conn| {
            Box::pin(async move {
                let result = f(conn).await;
                let ok = result.is_ok();
                (ok, deliver_to(tx, result))
            })
        });
        self.send(Job::One(job), rx).await
    }

    /// Runs `write` in the next batch, merged with its kind's neighbours there, and
    /// answers once that batch committed.
    pub async fn merge<M: Merge>(&self, write: M) -> StoreResult<M::Output> {
        let (reply, rx) = oneshot::channel();
        let job = Job::Merge {
            kind: TypeId::of::<M>(),
            key: write.key(),
            item: Box::new(Pending { write, reply }),
            run: run_group::<M>,
            on_handle: M::ON_HANDLE.map(|_| batch_on_handle::<M> as RunBatchOnHandle),
        };
        self.send(job, rx).await
    }

    async fn send<T>(&self, job: Job, rx: oneshot::Receiver<StoreResult<T>>) -> StoreResult<T> {
        self.jobs
            .send(job)
            .map_err(|_| StoreError::NotCommitted("the store is shutting down".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(StoreError::NotCommitted("the writer stopped before committing".into())))
    }
}

/// The delivery of `result` once the batch's fate is known.
fn deliver_to<T: Send + 'static>(tx: oneshot::Sender<StoreResult<T>>, result: StoreResult<T>) -> Deliver {
    Box::new(move |committed| {
        let _ = tx.send(match committed {
            Ok(()) => result,
            Err(why) => Err(StoreError::NotCommitted(why.to_string())),
        });
    })
}

async fn run_batches(
    writer: SqlitePool,
    mut rx: mpsc::UnboundedReceiver<Job>,
    idle: Option<std::sync::Arc<dyn Idle>>,
    log: Option<std::sync::Arc<LogWatch>>,
) {
    loop {
        let waiting = idle.as_ref().filter(|w| w.wanted());
        let first = match waiting {
            Some(work) => match tokio::time::timeout(IDLE_AFTER, rx.recv()).await {
                Ok(Some(job)) => job,
                Ok(None) => break,
                Err(_) => {
                    if let Err(e) = idle_chunk(&writer, work.as_ref(), None).await {
                        tracing::warn!(error = %e, "the writer's idle work failed; it is retried");
                    }
                    continue;
                }
            },
            None => match rx.recv().await {
                Some(job) => job,
                None => break,
            },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Dropping a job unrun drops its sender: its caller hears "not committed".
        let finish = match run_batch(&writer, batch).await {
            Ok(finish) => finish,
            Err(e) => {
                tracing::error!(error = %e, "a batch of writes could not start");
                Vec::new()
            }
        };
        if let Some(work) = idle.as_ref() {
            work.wrote();
        }
        // Between two batches, where nothing else writes: see `sqlite_checkpoint`.
        if let Some(watch) = log.as_ref().filter(|w| w.take_long()) {
            restart_log_now(&writer, watch).await;
        }
        let Some(work) = idle.as_ref() else {
            for (_, tx) in finish {
                let _ = tx.send(Ok(()));
            }
            continue;
        };
        if !finish.is_empty() {
            for (what, tx) in finish {
                let mut done = Ok(());
                while work.owed(what) && done.is_ok() {
                    done = idle_chunk(&writer, work.as_ref(), Some(what)).await;
                }
                let _ = tx.send(done);
            }
        } else if work.pressing() {
            if let Err(e) = idle_chunk(&writer, work.as_ref(), None).await {
                tracing::warn!(error = %e, "the writer's idle work failed; it is retried");
            }
        }
    }
}

/// Has the write-ahead log start again from its beginning with the next write.
async fn restart_log_now(writer: &SqlitePool, watch: &LogWatch) {
    let Some(_copying) = watch.try_copy() else {
        watch.still_long();
        return;
    };
    let started = std::time::Instant::now();
    let done = async {
        let mut conn = writer.acquire().await?;
        on_handle(&mut conn, |c| Ok(restart_log(c)?)).await
    }
    .await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match done {
        Ok(true) => tracing::debug!(ms, "write-ahead log copied; it starts again"),
        Ok(false) => tracing::debug!(ms, "write-ahead log: readers still in it; tried again later"),
        Err(e) => tracing::warn!(error = %e, "write-ahead log restart failed; tried again later"),
    }
}

/// One chunk of idle work in a transaction of its own.
async fn idle_chunk(writer: &SqlitePool, work: &dyn Idle, only: Option<Owed>) -> StoreResult<()> {
    let mut conn = writer.acquire().await?;
    exec(&mut conn, "BEGIN IMMEDIATE")
        .await
        .map_err(StoreError::NotCommitted)?;
    let ran = std::panic::AssertUnwindSafe(work.run(&mut conn, only))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(StoreError::NotCommitted("the writer's idle work panicked".into())));
    match ran {
        Ok(answer) => match exec(&mut conn, "COMMIT").await {
            // Still holding the connection: no other write can run before this.
            Ok(()) => {
                answer();
                Ok(())
            }
            Err(e) => {
                let _ = exec(&mut conn, "ROLLBACK").await;
                Err(StoreError::NotCommitted(e))
            }
        },
        Err(e) => {
            let _ = exec(&mut conn, "ROLLBACK").await;
            Err(e)
        }
    }
}

/// One statement on the batch's connection. Boxed: the batch future must be `Send` for
/// the writer task, which the compiler cannot prove through sqlx's executor bounds
/// unless each statement's future is an opaque `Send` box.
fn exec<'c>(conn: &'c mut SqliteConnection, sql: &'static str) -> BoxFuture<'c, Result<(), String>> {
    Box::pin(async move {
        sqlx::query(sql)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// Runs `f` on `conn`'s own SQLite handle through rusqlite, inside whatever
/// transaction `conn` has open. Through sqlx every statement is a round trip to the
/// connection's thread; on a busy 2-core machine each waited ~0.2 ms to be scheduled, so
/// a delete burst's dozen statements spent more time crossing threads than in SQLite.
pub async fn on_handle<T>(
    conn: &mut SqliteConnection,
    f: impl FnOnce(&rusqlite::Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    let mut locked = conn.lock_handle().await?;
    let raw = locked.as_raw_handle();
    // SAFETY: the handle is sqlx's, locked away from its worker thread until `locked`
    // drops, after `c`. `from_handle` borrows it (rusqlite finalizes only the statements
    // it prepared and never closes a handle it does not own). Both crates link the same
    // SQLite (libsqlite3-sys 0.30, bundled), so the pointer types are one type.
    let c = unsafe { rusqlite::Connection::from_handle(raw.as_ptr()) }?;
    let out = super::sqlite_bulk::blocking(|| f(&c));
    drop(c);
    drop(locked);
    out
}

/// Opens what undoes one write if it fails: a savepoint, or nothing when the write is
/// all the batch holds (`solo`): the transaction undoes it then, and a savepoint has
/// SQLite copy every page the write changes to a statement journal first (in 1 KiB
/// allocations: an eighth of a delete burst's time went to that copy and its mallocs).
async fn begin_write(conn: &mut SqliteConnection, solo: bool) -> Result<(), String> {
    if solo {
        return Ok(());
    }
    exec(conn, "SAVEPOINT w").await
}

/// Ends a write: kept when it succeeded, undone when it did not.
async fn end_write(conn: &mut SqliteConnection, solo: bool, ok: bool) -> Result<(), String> {
    match (solo, ok) {
        (true, true) => Ok(()),
        // The batch's transaction held this write alone: undone whole, and begun again
        // for whatever the batch runs next.
        (true, false) => {
            exec(conn, "ROLLBACK").await?;
            exec(conn, "BEGIN IMMEDIATE").await
        }
        (false, ok) => {
            if !ok {
                exec(conn, "ROLLBACK TO w").await?;
            }
            exec(conn, "RELEASE w").await
        }
    }
}

/// Runs a batch; answers the `Finish` requests found in it, for after the batch.
type Finish = Vec<(Owed, oneshot::Sender<StoreResult<()>>)>;

fn run_batch<'a>(writer: &'a SqlitePool, batch: Vec<Job>) -> BoxFuture<'a, StoreResult<Finish>> {
    Box::pin(async move {
        let mut finish = Vec::new();
        let mut conn = writer.acquire().await?;
        let batch = match one_group_on_handle(batch, &mut finish) {
            Ok((run, items)) => {
                let (delivered, outcome) = on_handle(&mut conn, |c| Ok(run(c, items))).await?;
                for deliver in delivered {
                    deliver(outcome.as_ref().map(|_| ()).map_err(String::as_str));
                }
                return Ok(finish);
            }
            Err(batch) => batch,
        };
        exec(&mut conn, "BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::NotCommitted)?;
        let mut delivered: Vec<Deliver> = Vec::with_capacity(batch.len());
        let mut broken: Option<String> = None;
        let writes = batch.iter().filter(|j| !matches!(j, Job::Finish(..))).count();
        let mut jobs = batch.into_iter().peekable();
        while let Some(job) = jobs.next() {
            match job {
                Job::Finish(what, tx) => finish.push((what, tx)),
                Job::One(job) => {
                    let solo = writes == 1;
                    if let Err(e) = begin_write(&mut conn, solo).await {
                        broken = Some(e);
                        break;
                    }
                    // A write that panics is a failed write, not a dead writer task.
                    let ran = std::panic::AssertUnwindSafe(job(&mut conn)).catch_unwind().await;
                    let ok = match ran {
                        Ok((ok, deliver)) => {
                            delivered.push(deliver);
                            ok
                        }
                        Err(_) => {
                            tracing::error!("a write panicked; its savepoint is rolled back");
                            false
                        }
                    };
                    if let Err(e) = end_write(&mut conn, solo, ok).await {
                        broken = Some(e);
                        break;
                    }
                }
                Job::Merge {
                    kind, key, item, run, ..
                } => {
                    let mut items = vec![item];
                    // Only neighbours merge: a write of another kind in between may
                    // depend on, or change, what the earlier ones did.
                    while let Some(Job::Merge { kind: k, key: next, .. }) = jobs.peek() {
                        if *k != kind || *next != key {
                            break;
                        }
                        if let Some(Job::Merge { item, .. }) = jobs.next() {
                            items.push(item);
                        }
                    }
                    let solo = items.len() == writes;
                    let group = run(&mut conn, items, solo).await;
                    delivered.extend(group.delivered);
                    if group.broken.is_some() {
                        broken = group.broken;
                        break;
                    }
                }
            }
        }
        let outcome = match broken {
            Some(why) => Err(why),
            None => exec(&mut conn, "COMMIT").await,
        };
        if outcome.is_err() {
            // The connection goes back to the pool: it must not keep a transaction open.
            let _ = exec(&mut conn, "ROLLBACK").await;
        }
        for deliver in delivered {
            deliver(outcome.as_ref().map(|_| ()).map_err(String::as_str));
        }
        Ok(finish)
    })
}

/// The batch's writes when they all merge into one group whose kind runs on the handle
/// (its `Finish` requests moved to `finish`); the batch as it was otherwise.
fn one_group_on_handle(batch: Vec<Job>, finish: &mut Finish) -> Result<(RunBatchOnHandle, Items), Vec<Job>> {
    let mut group: Option<(TypeId, &str, RunBatchOnHandle)> = None;
    for job in &batch {
        match job {
            Job::Finish(..) => {}
            Job::One(_) => return Err(batch),
            Job::Merge {
                kind,
                key,
                on_handle: Some(run),
                ..
            } => match group {
                None => group = Some((*kind, key, *run)),
                Some((k, g, _)) if k == *kind && g == key => {}
                Some(_) => return Err(batch),
            },
            Job::Merge { on_handle: None, .. } => return Err(batch),
        }
    }
    let Some((_, _, run)) = group else { return Err(batch) };
    let mut items = Vec::with_capacity(batch.len());
    for job in batch {
        match job {
            Job::Finish(what, tx) => finish.push((what, tx)),
            Job::Merge { item, .. } => items.push(item),
            Job::One(_) => {}
        }
    }
    Ok((run, items))
}

/// A batch that is one group of `M` writes, as a transaction of its own on the handle:
/// as `run_group` would run it alone in its batch (merged without a savepoint; if that
/// fails, undone and each write in a savepoint of its own), then committed.
fn batch_on_handle<M: Merge>(c: &rusqlite::Connection, items: Items) -> (Vec<Deliver>, Result<(), String>) {
    let Some(run) = M::ON_HANDLE else {
        return (Vec::new(), Err("internal: no statements on the handle".into()));
    };
    let (writes, replies): (Vec<M>, Vec<_>) = items
        .into_iter()
        .filter_map(|i| i.downcast::<Pending<M>>().ok())
        .map(|p| (p.write, p.reply))
        .unzip();
    let sql = |s: &str| c.execute_batch(s).map_err(|e| e.to_string());
    // A write that panics is a failed write, not a dead writer.
    let attempt = |some: &[M]| -> StoreResult<Vec<StoreResult<M::Output>>> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(c, some))) {
            Ok(Ok(r)) if r.len() != some.len() => Err(StoreError::NotCommitted(
                "internal: a merged write answered for the wrong number of writes".into(),
            )),
            Ok(r) => r,
            Err(_) => {
                tracing::error!("a write panicked; it is rolled back");
                Err(StoreError::NotCommitted("the write failed unexpectedly".into()))
            }
        }
    };
    if let Err(e) = sql("BEGIN IMMEDIATE") {
        return (Vec::new(), Err(e));
    }
    let mut delivered = Vec::with_capacity(writes.len());
    let mut replies = replies.into_iter();
    match attempt(&writes) {
        Ok(results) => delivered.extend(replies.by_ref().zip(results).map(|(tx, r)| deliver_to(tx, r))),
        Err(e) if writes.len() == 1 => {
            let _ = sql("ROLLBACK");
            delivered.extend(replies.next().map(|tx| deliver_to(tx, Err(e))));
            return (delivered, Ok(()));
        }
        // Undone; each alone, so a failure is its own write's.
        Err(_) => {
            if let Err(e) = sql("ROLLBACK").and_then(|_| sql("BEGIN IMMEDIATE")) {
                return (Vec::new(), Err(e));
            }
            for (write, tx) in writes.iter().zip(replies.by_ref()) {
                if let Err(e) = sql("SAVEPOINT w") {
                    let _ = sql("ROLLBACK");
                    return (delivered, Err(e));
                }
                let result = attempt(std::slice::from_ref(write)).and_then(|mut r| {
                    r.pop()
                        .unwrap_or_else(|| Err(StoreError::NotCommitted("internal: a write gave no result".into())))
                });
                let undo = if result.is_err() { sql("ROLLBACK TO w") } else { Ok(()) };
                if let Err(e) = undo.and_then(|_| sql("RELEASE w")) {
                    let _ = sql("ROLLBACK");
                    return (delivered, Err(e));
                }
                delivered.push(deliver_to(tx, result));
            }
        }
    }
    let outcome = sql("COMMIT");
    if outcome.is_err() {
        let _ = sql("ROLLBACK");
    }
    (delivered, outcome)
}

/// Runs merged writes of type `M` as one, in a savepoint (none when they are the batch's
/// only writes, `solo`); when that fails, each alone.
fn run_group<M: Merge>(
    conn: &mut SqliteConnection,
    items: Vec<Box<dyn Any + Send>>,
    solo: bool,
) -> BoxFuture<'_, GroupRun> {
    Box::pin(async move {
        // Every item is a `Pending<M>`: the queue groups by `TypeId::of::<M>()`.
        let (writes, replies): (Vec<M>, Vec<_>) = items
            .into_iter()
            .filter_map(|i| i.downcast::<Pending<M>>().ok())
            .map(|p| (p.write, p.reply))
            .unzip();
        let mut out = GroupRun::default();
        if writes.len() > 1 {
            match attempt(conn, &writes, solo).await {
                Err(broken) => {
                    out.broken = Some(broken);
                    return out;
                }
                Ok(Ok(results)) if results.len() == writes.len() => {
                    out.delivered = replies
                        .into_iter()
                        .zip(results)
                        .map(|(tx, r)| deliver_to(tx, r))
                        .collect();
                    return out;
                }
                // Undone: each alone, below, so a failure is its own write's.
                Ok(_) => {}
            }
        }
        // After a merged run was undone, the transaction is as empty as before it.
        let alone = solo && writes.len() == 1;
        for (write, tx) in writes.iter().zip(replies) {
            match attempt(conn, std::slice::from_ref(write), alone).await {
                Err(broken) => {
                    out.broken = Some(broken);
                    break;
                }
                Ok(result) => {
                    // One write in, one result out (`attempt` checks the count).
                    let result = result.and_then(|mut r| {
                        r.pop()
                            .unwrap_or_else(|| Err(StoreError::NotCommitted("internal: a write gave no result".into())))
                    });
                    out.delivered.push(deliver_to(tx, result));
                }
            }
        }
        out
    })
}

/// `M::run_all`, undone if it fails (`begin_write`): the outer `Err` is a broken batch,
/// the inner one a failed (and undone) run.
async fn attempt<M: Merge>(
    conn: &mut SqliteConnection,
    writes: &[M],
    solo: bool,
) -> Result<StoreResult<Vec<StoreResult<M::Output>>>, String> {
    begin_write(conn, solo).await?;
    let ran = std::panic::AssertUnwindSafe(M::run_all(conn, writes))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!("a write panicked; its savepoint is rolled back");
            Err(StoreError::NotCommitted("the write failed unexpectedly".into()))
        });
    let ran = match ran {
        Ok(r) if r.len() != writes.len() => Err(StoreError::NotCommitted(
            "internal: a merged write answered for the wrong number of writes".into(),
        )),
        other => other,
    };
    end_write(conn, solo, ran.is_ok()).await?;
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    /// A one-connection pool on a new database holding `t (x UNIQUE)`.
    async fn table_t() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER NOT NULL UNIQUE)")
            .execute(&pool)
            .await
            .unwrap();
        (dir, pool)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_or_panicking_write_leaves_its_batch_intact() {
        let (_dir, pool) = table_t().await;
        let commits = GroupCommit::start(pool.clone(), None, None);
        let mut tasks = Vec::new();
        for i in 0..200i64 {
            let commits = commits.clone();
            tasks.push(tokio::spawn(async move {
                commits
                    .write(move |c| {
                        Box::pin(async move {
                            assert!(i != 13, "a write that panics");
                            // 7 twice: the second breaks the UNIQUE rule after its first insert.
                            sqlx::query("INSERT INTO t (x) VALUES (?)")
                                .bind(1000 + i)
                                .execute(&mut *c)
                                .await?;
                            let x = if i == 150 { 7 } else { i };
                            sqlx::query("INSERT INTO t (x) VALUES (?)")
                                .bind(x)
                                .execute(&mut *c)
                                .await?;
                            Ok(i)
                        })
                    })
                    .await
            }));
        }
        let mut failed = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(v) => assert_eq!(v, i as i64),
                Err(_) => failed.push(i),
            }
        }
        // The panic, and whichever of 7 and 150 came second (the tasks race to the queue).
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert!(failed.contains(&13), "{failed:?}");
        let dup = failed.iter().copied().find(|&i| i != 13).unwrap();
        assert!(dup == 7 || dup == 150, "{failed:?}");
        // The failed writes left nothing behind (not even their first insert); all others committed.
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 2 * 198);
        for gone in [1013, 1000 + dup as i64, 13] {
            let k: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE x = ?")
                .bind(gone)
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(k, 0, "{gone} should have been rolled back");
        }
        // The writer task survived the panic.
        let after = commits.write(|_| Box::pin(async { Ok(1) })).await.unwrap();
        assert_eq!(after, 1);
    }

    /// A write alone in its batch runs without a savepoint: when it fails, the batch's
    /// transaction is undone whole and the next write finds nothing of it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_alone_in_its_batch_leaves_nothing() {
        let (_dir, pool) = table_t().await;
        let commits = GroupCommit::start(pool.clone(), None, None);
        // Inserts 1, then 1 again: the second breaks the UNIQUE rule.
        let failed = commits
            .write(|c| {
                Box::pin(async move {
                    for _ in 0..2 {
                        sqlx::query("INSERT INTO t (x) VALUES (1)").execute(&mut *c).await?;
                    }
                    Ok(())
                })
            })
            .await;
        assert!(failed.is_err());
        commits
            .write(|c| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO t (x) VALUES (2)").execute(&mut *c).await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
        let xs: Vec<i64> = sqlx::query_scalar("SELECT x FROM t ORDER BY x")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(xs, vec![2]);
    }

    /// A write that holds the writer in its batch until the sender is used or dropped, so
    /// that the writes queued meanwhile meet in the next batch.
    fn hold_writer(commits: &GroupCommit) -> (oneshot::Sender<()>, tokio::task::JoinHandle<StoreResult<()>>) {
        let (open, gate) = oneshot::channel::<()>();
        let commits = commits.clone();
        let blocker = tokio::spawn(async move {
            commits
                .write(move |_| {
                    Box::pin(async move {
                        let _ = gate.await;
                        Ok(())
                    })
                })
                .await
        });
        (open, blocker)
    }

    /// Inserts `x` and `1000 + x`; merged, all writes' rows go in one statement.
    struct Insert {
        x: i64,
        dup: bool,
    }

    /// The largest group `Insert::run_all` was given.
    static LARGEST_GROUP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    impl Merge for Insert {
        type Output = i64;
        fn key(&self) -> String {
            "t".into()
        }
        fn run_all<'c>(
            conn: &'c mut SqliteConnection,
            all: &'c [Self],
        ) -> BoxFuture<'c, StoreResult<Vec<StoreResult<i64>>>> {
            Box::pin(async move {
                LARGEST_GROUP.fetch_max(all.len(), std::sync::atomic::Ordering::Relaxed);
                assert!(all.iter().all(|w| w.x != 13), "a write that panics");
                let mut qb: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new("INSERT INTO t (x) ");
                qb.push_values(all, |mut b, w| {
                    b.push_bind(1000 + w.x);
                });
                qb.build().execute(&mut *conn).await?;
                let mut qb: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new("INSERT INTO t (x) ");
                qb.push_values(all, |mut b, w| {
                    b.push_bind(if w.dup { 7 } else { w.x });
                });
                qb.build().execute(&mut *conn).await?;
                Ok(all.iter().map(|w| Ok(w.x)).collect())
            })
        }
    }

    /// `Insert` with its statements on the handle: its batches run in one hand-off.
    struct InsertOnHandle {
        x: i64,
        dup: bool,
    }

    static LARGEST_GROUP_ON_HANDLE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    /// Whether `InsertOnHandle` ever ran through sqlx (a batch mixed with other writes).
    static ON_HANDLE_VIA_SQLX: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    impl InsertOnHandle {
        fn run(c: &rusqlite::Connection, all: &[Self]) -> StoreResult<Vec<StoreResult<i64>>> {
            LARGEST_GROUP_ON_HANDLE.fetch_max(all.len(), std::sync::atomic::Ordering::Relaxed);
            assert!(all.iter().all(|w| w.x != 13), "a write that panics");
            let mut insert = c.prepare_cached("INSERT INTO t (x) VALUES (?)")?;
            for w in all {
                insert.execute([1000 + w.x])?;
            }
            for w in all {
                insert.execute([if w.dup { 7 } else { w.x }])?;
            }
            Ok(all.iter().map(|w| Ok(w.x)).collect())
        }
    }

    impl Merge for InsertOnHandle {
        type Output = i64;
        const ON_HANDLE: Option<OnHandle<Self>> = Some(Self::run);
        fn key(&self) -> String {
            "t".into()
        }
        fn run_all<'c>(
            conn: &'c mut SqliteConnection,
            all: &'c [Self],
        ) -> BoxFuture<'c, StoreResult<Vec<StoreResult<i64>>>> {
            ON_HANDLE_VIA_SQLX.store(true, std::sync::atomic::Ordering::Relaxed);
            Box::pin(on_handle(conn, |c| Self::run(c, all)))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn merged_writes_share_statements_and_still_fail_alone() {
        merged_writes_fail_alone(|x, dup| Insert { x, dup }, &LARGEST_GROUP).await;
    }

    /// The same on the handle, where a batch of one such group is a transaction of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn merged_writes_on_the_handle_share_statements_and_still_fail_alone() {
        merged_writes_fail_alone(|x, dup| InsertOnHandle { x, dup }, &LARGEST_GROUP_ON_HANDLE).await;
        assert!(
            !ON_HANDLE_VIA_SQLX.load(std::sync::atomic::Ordering::Relaxed),
            "batches of one kind ran on the handle, whole"
        );
    }

    /// Merges `make(i, i == dup)` for every `i` while the writer is held in a batch, so
    /// they queue for the next ones and meet there; answers their results in order.
    async fn merged_behind_a_held_batch<M: Merge<Output = i64>>(
        commits: &GroupCommit,
        make: fn(i64, bool) -> M,
        ids: std::ops::Range<i64>,
        dup: i64,
    ) -> Vec<StoreResult<i64>> {
        let (open, blocker) = hold_writer(commits);
        // The blocker's batch has started: the merged writes queue for the next one.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let tasks: Vec<_> = ids
            .map(|i| {
                let commits = commits.clone();
                tokio::spawn(async move { commits.merge(make(i, i == dup)).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        open.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        futures_util::future::join_all(tasks)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect()
    }

    async fn merged_writes_fail_alone<M: Merge<Output = i64>>(
        make: fn(i64, bool) -> M,
        largest_group: &std::sync::atomic::AtomicUsize,
    ) {
        let (_dir, pool) = table_t().await;
        let commits = GroupCommit::start(pool.clone(), None, None);
        let mut failed = Vec::new();
        for (i, r) in merged_behind_a_held_batch(&commits, make, 0..200, 150)
            .await
            .into_iter()
            .enumerate()
        {
            match r {
                Ok(v) => assert_eq!(v, i as i64),
                Err(_) => failed.push(i),
            }
        }
        // They were merged (up to a batch's worth), and yet only the panic and the
        // duplicate failed: their groups were undone and run one by one.
        let largest = largest_group.load(std::sync::atomic::Ordering::Relaxed);
        assert!(largest > 1, "no writes were merged");
        assert!(largest <= MAX_BATCH, "{largest}");
        assert!(failed.contains(&13), "{failed:?}");
        assert_eq!(failed.len(), 2, "{failed:?}");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 2 * 198);
        for gone in [13, 1013] {
            let k: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE x = ?")
                .bind(gone)
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(k, 0, "{gone} should have been rolled back");
        }
    }

    /// Merged writes that are their batch's only writes run without a savepoint; when the
    /// merged run fails it is undone with the transaction, and each runs alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_merged_batch_of_its_own_is_undone_and_run_one_by_one() {
        failing_merged_batch_of_its_own(|x, dup| Insert { x, dup }).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_batch_on_the_handle_is_undone_and_run_one_by_one() {
        failing_merged_batch_of_its_own(|x, dup| InsertOnHandle { x, dup }).await;
    }

    /// A lone write on the handle that fails leaves nothing, and the writer goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_lone_write_on_the_handle_leaves_nothing() {
        let (_dir, pool) = table_t().await;
        let commits = GroupCommit::start(pool.clone(), None, None);
        commits.merge(InsertOnHandle { x: 7, dup: false }).await.unwrap();
        assert!(commits.merge(InsertOnHandle { x: 8, dup: true }).await.is_err());
        assert!(
            commits.merge(InsertOnHandle { x: 13, dup: false }).await.is_err(),
            "it panicked"
        );
        commits.merge(InsertOnHandle { x: 9, dup: false }).await.unwrap();
        let all: Vec<i64> = sqlx::query_scalar("SELECT x FROM t ORDER BY x")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(all, vec![7, 9, 1007, 1009], "nothing of 8 or 13");
    }

    async fn failing_merged_batch_of_its_own<M: Merge<Output = i64>>(make: fn(i64, bool) -> M) {
        let (_dir, pool) = table_t().await;
        sqlx::query("INSERT INTO t (x) VALUES (7)")
            .execute(&pool)
            .await
            .unwrap();
        let commits = GroupCommit::start(pool.clone(), None, None);
        let results: Vec<bool> = merged_behind_a_held_batch(&commits, make, 300..310, 305)
            .await
            .iter()
            .map(Result::is_ok)
            .collect();
        assert_eq!(results.iter().filter(|ok| !**ok).count(), 1, "{results:?}");
        assert!(!results[5]);
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE x BETWEEN 300 AND 1309")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 18, "two rows for each write but the duplicate, which left none");
        let seven: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE x = 7")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(seven, 1);
    }
}
