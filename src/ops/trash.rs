//! The trash: restore, purge, the retention sweep, and bulk operations over what a
//! search matches (run as jobs, with progress and a result naming what failed).

use super::jobs::{JobEnv, Progress};
use super::{audit, Ctx, OpsError, OpsResult};
use crate::domain::query::{self, SearchRequest};
use crate::store::{Job, RestoreOutcome, Scope};
use serde_json::{json, Map, Value};

pub const BULK_DELETE: &str = "bulkdelete";
pub const BULK_RESTORE: &str = "bulkrestore";
pub const BULK_PURGE: &str = "bulkpurge";

const CHUNK: usize = 500;

pub struct Restored {
    pub restored: Vec<String>,
    pub missing: Vec<String>,
    /// Assets whose sourcepath another live asset holds now.
    pub conflicts: Vec<(String, String)>,
}

pub async fn restore(ctx: &Ctx<'_>, ids: &[String]) -> OpsResult<Restored> {
    let outcomes = ctx.store.restore_assets(ctx.catalog, ids).await?;
    let mut r = Restored {
        restored: Vec::new(),
        missing: Vec::new(),
        conflicts: Vec::new(),
    };
    for (id, o) in outcomes {
        match o {
            RestoreOutcome::Restored => {
                audit::record(ctx.store, ctx.audit("restore", Some(&id))).await;
                r.restored.push(id)
            }
            RestoreOutcome::NotInTrash => r.missing.push(id),
            RestoreOutcome::SourcepathTaken(sp) => r.conflicts.push((id, sp)),
        }
    }
    Ok(r)
}

/// Removes trashed (or live) assets and their originals for good.
pub async fn purge(ctx: &Ctx<'_>, ids: &[String]) -> OpsResult<(Vec<String>, Vec<String>)> {
    let (mut purged, mut missing) = (Vec::new(), Vec::new());
    for id in ids {
        match purge_one(ctx.store, ctx.blobs, ctx.catalog, id).await {
            Ok(()) => {
                audit::record(ctx.store, ctx.audit("purge", Some(id))).await;
                purged.push(id.clone())
            }
            Err(OpsError::NotFound(_)) => missing.push(id.clone()),
            Err(e) => return Err(e),
        }
    }
    Ok((purged, missing))
}

async fn purge_one(
    store: &dyn crate::store::MetaStore,
    blobs: &crate::blobs::BlobStore,
    catalog: &str,
    id: &str,
) -> OpsResult<()> {
    // The files are journalled before the row goes: a crash between the two cannot
    // leave them behind unseen (start-up recovery deletes them).
    for scope in [crate::store::Scope::Trash, crate::store::Scope::Live] {
        if let Some(s) = store.get_asset_in(catalog, id, scope).await? {
            let renditions = super::import::renditions_of(&s.asset).into_iter().map(|r| r.blob);
            for key in s.asset.original.map(|o| o.blob_key).into_iter().chain(renditions) {
                blobs.note_pending(&key);
            }
            break;
        }
    }
    match store.purge_asset(catalog, id).await {
        Ok(asset) => {
            // The row is gone first, so nothing can serve the files while they are
            // removed; a failure here leaves an orphan for fsck, never a dangling row.
            let derived = super::import::derived_blobs_of(&asset);
            let versions = super::versions::old_version_blobs(&asset);
            for key in asset
                .original
                .map(|o| o.blob_key)
                .into_iter()
                .chain(derived)
                .chain(versions)
            {
                if let Err(e) = blobs.delete(&key).await {
                    tracing::warn!(blob = %key, error = %e, "could not remove a purged file");
                }
            }
            Ok(())
        }
        Err(crate::store::StoreError::NotFound) => Err(OpsError::NotFound(id.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// Purges every trashed asset deleted before `cutoff`; the number purged.
pub async fn purge_expired(env: &JobEnv, cutoff: &str) -> OpsResult<u64> {
    let mut n = 0;
    loop {
        let batch = env.store.trashed_before(cutoff, CHUNK as u32).await?;
        if batch.is_empty() {
            return Ok(n);
        }
        for (catalog, id) in &batch {
            match purge_one(env.store.as_ref(), &env.blobs, catalog, id).await {
                Ok(()) | Err(OpsError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            audit::record(
                env.store.as_ref(),
                audit::Entry {
                    catalog,
                    user: "system",
                    address: "",
                    action: "purge",
                    assetid: Some(id),
                    fields: Vec::new(),
                    details: json!({"reason": "trash retention"}),
                },
            )
            .await;
            n += 1;
        }
    }
}

/// A search over every match (paging is ignored by bulk operations).
pub fn bulk_search(body: &Map<String, Value>) -> OpsResult<SearchRequest> {
    Ok(query::parse_search(body, "asset", &crate::ops::assets::field_info)?)
}

fn payload_body(job: &Job) -> OpsResult<SearchRequest> {
    let body = job
        .payload
        .get("query")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    bulk_search(&body)
}

fn payload_user(job: &Job) -> String {
    job.payload
        .get("user")
        .and_then(Value::as_str)
        .unwrap_or("system")
        .to_string()
}

/// An audit entry for an asset a bulk job changed, in the name of who queued it.
async fn job_audit(env: &JobEnv, job: &Job, action: &str, id: &str) {
    audit::record(
        env.store.as_ref(),
        audit::Entry {
            catalog: &job.catalog,
            user: job.payload.get("user").and_then(Value::as_str).unwrap_or("system"),
            address: job.payload.get("address").and_then(Value::as_str).unwrap_or(""),
            action,
            assetid: Some(id),
            fields: Vec::new(),
            details: json!({"job": job.id}),
        },
    )
    .await;
}

pub async fn run_bulk_delete(env: &JobEnv, job: &Job, progress: &Progress<'_>) -> OpsResult<Value> {
    let req = payload_body(job)?;
    let user = payload_user(job);
    let ids = env.store.search_asset_ids(&job.catalog, &req, Scope::Live).await?;
    let total = ids.len();
    let mut done = 0usize;
    for chunk in ids.chunks(CHUNK) {
        let audit: Vec<_> = chunk
            .iter()
            .map(|id| {
                audit::prepare(audit::Entry {
                    catalog: &job.catalog,
                    user: &user,
                    address: job.payload.get("address").and_then(Value::as_str).unwrap_or(""),
                    action: "delete",
                    assetid: Some(id),
                    fields: Vec::new(),
                    details: json!({"job": job.id}),
                })
            })
            .collect();
        let deleted = env.store.trash_assets(&job.catalog, chunk, &user, &audit).await?;
        done += deleted.len();
        progress.report(json!({"total": total, "done": done})).await;
    }
    Ok(json!({"total": total, "rowsedited": done.to_string(), "failed": []}))
}

pub async fn run_bulk_restore(env: &JobEnv, job: &Job, progress: &Progress<'_>) -> OpsResult<Value> {
    let req = payload_body(job)?;
    let ids = env.store.search_asset_ids(&job.catalog, &req, Scope::Trash).await?;
    let total = ids.len();
    let (mut done, mut failed) = (0usize, Vec::new());
    for chunk in ids.chunks(CHUNK) {
        for (id, outcome) in env.store.restore_assets(&job.catalog, chunk).await? {
            match outcome {
                RestoreOutcome::Restored => {
                    job_audit(env, job, "restore", &id).await;
                    done += 1
                }
                RestoreOutcome::NotInTrash => failed.push(json!({"id": id, "reason": "no longer in the trash"})),
                RestoreOutcome::SourcepathTaken(sp) => {
                    failed.push(json!({"id": id, "reason": format!("sourcepath \"{sp}\" is taken")}))
                }
            }
        }
        progress
            .report(json!({"total": total, "done": done, "failed": failed.len()}))
            .await;
    }
    Ok(json!({"total": total, "rowsedited": done.to_string(), "failed": failed}))
}

pub async fn run_bulk_purge(env: &JobEnv, job: &Job, progress: &Progress<'_>) -> OpsResult<Value> {
    let req = payload_body(job)?;
    let ids = env.store.search_asset_ids(&job.catalog, &req, Scope::Trash).await?;
    let total = ids.len();
    let mut done = 0usize;
    for chunk in ids.chunks(CHUNK) {
        for id in chunk {
            match purge_one(env.store.as_ref(), &env.blobs, &job.catalog, id).await {
                Ok(()) => {
                    job_audit(env, job, "purge", id).await;
                    done += 1
                }
                Err(OpsError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        progress.report(json!({"total": total, "done": done})).await;
    }
    Ok(json!({"total": total, "rowsedited": done.to_string(), "failed": []}))
}

/// Thresholds of the guard against mass loss.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    /// A bulk operation over more than this many assets...
    pub min_count: u64,
    /// ...that is also more than this share of the catalog needs `confirm`.
    pub share: f64,
}

/// Queues a bulk operation over every asset a search matches. Refuses, naming the
/// numbers, when it would remove a large share of a large catalog without `confirm`.
pub async fn enqueue_bulk(
    ctx: &Ctx<'_>,
    kind: &str,
    body: &Map<String, Value>,
    confirm: bool,
    guard: Guard,
) -> OpsResult<(String, u64)> {
    let req = bulk_search(body)?;
    let scope = if kind == BULK_DELETE { Scope::Live } else { Scope::Trash };
    let matched = ctx
        .store
        .search_assets(
            ctx.catalog,
            &SearchRequest {
                hits_per_page: 1,
                page: 1,
                ..req
            },
            scope,
        )
        .await?
        .total;
    if kind != BULK_RESTORE && !confirm && matched > guard.min_count {
        let all = ctx.store.count_assets(ctx.catalog, Scope::Live).await?
            + ctx.store.count_assets(ctx.catalog, Scope::Trash).await?;
        if all > 0 && matched as f64 / all as f64 > guard.share {
            return Err(OpsError::Invalid(crate::domain::Invalid::new(format!(
                "this would remove {matched} of {all} assets; to go ahead send \"confirm\":\"true\""
            ))));
        }
    }
    let payload = json!({"query": body, "user": ctx.user, "address": ctx.address});
    let id = ctx.store.enqueue_job(kind, ctx.catalog, &payload).await?;
    Ok((id, matched))
}
