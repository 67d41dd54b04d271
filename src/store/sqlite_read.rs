//! Reads of the embedded store, run on the caller's own thread.
//!
//! sqlx drives each SQLite connection from a thread of its own and hands every statement
//! and every row across channels; for reads that take microseconds those hand-offs were
//! most of the cost (a profile of the HTTP bench: a quarter of the server's samples in
//! task switches). Reads here use plain rusqlite connections from a small pool, right
//! where the request runs; WAL gives each read a consistent snapshot beside the one
//! writer (which stays on sqlx, behind group commit). Both link the same SQLite.

use super::{StoreError, StoreResult};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Prepared statements kept per connection: the fixed reads plus the shapes of recent
/// searches (dynamic SQL, but clients repeat their queries).
const STATEMENT_CACHE: usize = 128;

/// A pool of at most `size` read-only connections, opened on first need and kept.
pub struct Readers {
    path: PathBuf,
    /// A permit per connection: a caller waits here (asynchronously) rather than opening
    /// one more connection, with its own cold cache and schema to parse.
    permits: tokio::sync::Semaphore,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub fn new(path: &Path, size: usize) -> Self {
        Readers {
            path: path.to_path_buf(),
            permits: tokio::sync::Semaphore::new(size),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // The writer's settings that matter to a reader (see `SqliteStore::open`), and a
        // guard: nothing read here may ever write.
        conn.execute_batch("PRAGMA cache_size = -32768; PRAGMA query_only = 1;")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn take(&self) -> StoreResult<Connection> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match pooled {
            Some(c) => Ok(c),
            None => Ok(self.open()?),
        }
    }

    fn run<R>(&self, f: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
        let conn = self.take()?;
        let out = f(&conn);
        // A statement left mid-step would pin its snapshot (and the WAL) while idle.
        if conn.is_autocommit() {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
        }
        out
    }

    /// Runs a short read (a lookup by key) right here, on the caller's thread.
    pub async fn read<R>(&self, f: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
        let _permit = self.permits.acquire().await.map_err(closed)?;
        self.run(f)
    }

    /// Runs a read that may scan (a search, facet counts): on a multi-threaded runtime the
    /// worker's other tasks move to another thread meanwhile, so a long scan does not
    /// stall the requests queued behind it.
    pub async fn scan<R>(&self, f: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
        let _permit = self.permits.acquire().await.map_err(closed)?;
        let multi = tokio::runtime::Handle::try_current()
            .map(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
            .unwrap_or(false);
        if multi {
            tokio::task::block_in_place(|| self.run(f))
        } else {
            self.run(f)
        }
    }

    /// Connections open and idle now.
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Columns by name, the same way from a rusqlite read and from a sqlx write's
/// `RETURNING`, so one mapping serves both.
pub trait Columns {
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>>;
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>>;

    fn text(&self, name: &str) -> StoreResult<String> {
        self.opt_text(name)?
            .ok_or_else(|| StoreError::Corrupt(format!("{name} is NULL")))
    }

    fn int(&self, name: &str) -> StoreResult<i64> {
        self.opt_int(name)?
            .ok_or_else(|| StoreError::Corrupt(format!("{name} is NULL")))
    }
}

impl Columns for rusqlite::Row<'_> {
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(self.get(name)?)
    }

    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
        Ok(self.get(name)?)
    }
}

impl Columns for sqlx::sqlite::SqliteRow {
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::Row::try_get(self, name)?)
    }

    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
        Ok(sqlx::Row::try_get(self, name)?)
    }
}

fn closed(_: tokio::sync::AcquireError) -> StoreError {
    StoreError::NotCommitted("the store is closed".into())
}

/// The row a fixed statement finds, if any.
pub fn one<T>(
    c: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnOnce(&rusqlite::Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut st = c.prepare_cached(sql)?;
    let mut rows = st.query(params)?;
    rows.next()?.map(map).transpose()
}

/// Every row of a fixed statement.
pub fn all<T>(
    c: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    mut map: impl FnMut(&rusqlite::Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut st = c.prepare_cached(sql)?;
    let mut rows = st.query(params)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(map(r)?);
    }
    Ok(out)
}

/// Rows of a statement built with [`SqlBuilder`].
pub fn query_rows<T>(
    conn: &Connection,
    q: &SqlBuilder,
    map: impl FnMut(&rusqlite::Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    all(conn, &q.sql, rusqlite::params_from_iter(q.binds.iter()), map)
}

/// Runs a statement built with [`SqlBuilder`], handing each row to `each` without
/// collecting them (counting over many rows).
pub fn each_row(
    conn: &Connection,
    q: &SqlBuilder,
    mut each: impl FnMut(&rusqlite::Row<'_>) -> StoreResult<()>,
) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached(&q.sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(q.binds.iter()))?;
    while let Some(r) = rows.next()? {
        each(r)?;
    }
    Ok(())
}

/// The first column of the first row (a `COUNT(*)`, say).
pub fn query_scalar<T: rusqlite::types::FromSql>(conn: &Connection, q: &SqlBuilder) -> StoreResult<T> {
    let mut stmt = conn.prepare_cached(&q.sql)?;
    Ok(stmt.query_row(rusqlite::params_from_iter(q.binds.iter()), |r| r.get(0))?)
}

/// Dynamic SQL with its parameters, built by the search compiler. Values are always
/// bound, never spliced into the text.
#[derive(Debug, Default, Clone)]
pub struct SqlBuilder {
    sql: String,
    binds: Vec<SqlValue>,
}

impl SqlBuilder {
    pub fn new(init: impl Into<String>) -> Self {
        SqlBuilder {
            sql: init.into(),
            binds: Vec::new(),
        }
    }

    pub fn push(&mut self, sql: impl std::fmt::Display) -> &mut Self {
        use std::fmt::Write;
        let _ = write!(self.sql, "{sql}");
        self
    }

    pub fn push_bind(&mut self, value: impl Into<Bind>) -> &mut Self {
        self.binds.push(value.into().0);
        self.sql.push('?');
        self
    }

    /// Binds separated by `sep` (`IN (?, ?, ?)` lists).
    pub fn separated<'b>(&'b mut self, sep: &'static str) -> Separated<'b> {
        Separated {
            qb: self,
            sep,
            first: true,
        }
    }

    #[cfg(test)]
    pub fn sql(&self) -> &str {
        &self.sql
    }
}

pub struct Separated<'b> {
    qb: &'b mut SqlBuilder,
    sep: &'static str,
    first: bool,
}

impl Separated<'_> {
    pub fn push_bind(&mut self, value: impl Into<Bind>) -> &mut Self {
        if !self.first {
            self.qb.sql.push_str(self.sep);
        }
        self.first = false;
        self.qb.push_bind(value);
        self
    }
}

/// A value a [`SqlBuilder`] binds.
pub struct Bind(SqlValue);

impl From<i64> for Bind {
    fn from(v: i64) -> Self {
        Bind(SqlValue::Integer(v))
    }
}

impl From<f64> for Bind {
    fn from(v: f64) -> Self {
        Bind(SqlValue::Real(v))
    }
}

impl From<String> for Bind {
    fn from(v: String) -> Self {
        Bind(SqlValue::Text(v))
    }
}

impl From<&String> for Bind {
    fn from(v: &String) -> Self {
        Bind(SqlValue::Text(v.clone()))
    }
}

impl From<&str> for Bind {
    fn from(v: &str) -> Self {
        Bind(SqlValue::Text(v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_are_parameters_in_order() {
        let mut qb = SqlBuilder::new("SELECT ");
        qb.push_bind(1i64).push(" + ").push_bind(2.5f64).push(", ");
        qb.push_bind("it's").push(", 'a' IN (");
        let mut sep = qb.separated(", ");
        sep.push_bind("a".to_string());
        let b = "b".to_string();
        sep.push_bind(&b);
        qb.push(")");
        assert_eq!(qb.sql(), "SELECT ? + ?, ?, 'a' IN (?, ?)");
        let conn = Connection::open_in_memory().unwrap();
        let rows = query_rows(&conn, &qb, |r| {
            Ok((r.get::<_, f64>(0)?, r.get::<_, String>(1)?.len(), r.get::<_, i64>(2)?))
        })
        .unwrap();
        assert_eq!(rows, vec![(3.5, 4, 1)]);
    }

    #[tokio::test]
    async fn readers_cannot_write_and_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);")
            .unwrap();
        let readers = Readers::new(&path, 2);
        let x: i64 = readers
            .read(|c| Ok(c.query_row("SELECT x FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(x, 7);
        assert_eq!(readers.idle(), 1);
        let err = readers.read(|c| Ok(c.execute("DELETE FROM t", [])?)).await.unwrap_err();
        assert!(
            err.to_string().contains("readonly") || err.to_string().contains("read"),
            "{err}"
        );
        let x: i64 = readers
            .scan(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(x, 1);
        assert_eq!(readers.idle(), 1, "one connection served all three reads");
    }
}
