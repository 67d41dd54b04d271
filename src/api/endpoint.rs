//! The route table: every `services/...` call decoded into one [`Endpoint`], with the
//! access it requires. Decoding is pure and unit-tested without HTTP.

use crate::auth::Permission;
use axum::http::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Login,
    GetKey,
    Logout,
    SystemStatus,
    /// `module/asset/create`, and `POST module/asset/data/{anything}`.
    AssetCreate,
    AssetGet(String),
    AssetUpdate(String),
    AssetDelete(String),
    AssetSearch,
    DeleteAssets,
    /// `module/asset/downloads/originals/{sourcepath}/{filename}`.
    DownloadOriginal(String),
    TrashSearch,
    TrashRestore,
    TrashPurge,
    /// `module/asset/jobs/{jobid}`: the state of a bulk job.
    JobStatus(String),
    /// `lists/search/{searchtype}`.
    ListSearch(String),
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// Any valid key.
    Authenticated,
    Requires(Permission),
}

impl Endpoint {
    pub fn access(&self) -> Access {
        use Endpoint::*;
        match self {
            Login | GetKey | SystemStatus => Access::Public,
            Logout => Access::Authenticated,
            AssetCreate => Access::Requires(Permission::CreateData),
            AssetGet(_) => Access::Requires(Permission::LoadData),
            AssetUpdate(_) => Access::Requires(Permission::UpdateData),
            AssetDelete(_) | DeleteAssets => Access::Requires(Permission::DeleteData),
            AssetSearch => Access::Requires(Permission::SearchData),
            DownloadOriginal(_) => Access::Requires(Permission::Download),
            TrashSearch | TrashRestore | TrashPurge => Access::Requires(Permission::ManageTrash),
            JobStatus(_) => Access::Authenticated,
            ListSearch(t) if t == "auditlog" => Access::Requires(Permission::ManageUsers),
            ListSearch(_) => Access::Requires(Permission::SearchData),
        }
    }

    /// Whether the request body is streamed to the handler (uploads) instead of read whole.
    pub fn streams_body(&self) -> bool {
        matches!(self, Endpoint::AssetCreate)
    }

    /// One sample of every endpoint, for tests that walk the route table.
    pub fn samples() -> Vec<(Method, &'static str)> {
        vec![
            (Method::POST, "authentication/login"),
            (Method::POST, "authentication/getkey"),
            (Method::POST, "authentication/logout"),
            (Method::GET, "system/systemstatus"),
            (Method::POST, "module/asset/create"),
            (Method::GET, "module/asset/data/101"),
            (Method::PUT, "module/asset/data/101"),
            (Method::DELETE, "module/asset/data/101"),
            (Method::POST, "module/asset/search"),
            (Method::POST, "module/asset/deleteassets"),
            (Method::GET, "module/asset/downloads/originals/a/b.jpg/b.jpg"),
        ]
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    /// The path exists but not for this method; the allowed methods.
    Method(&'static str),
}

/// Decodes the part of the path after `services/` (percent-decoded).
pub fn decode(method: &Method, rest: &str) -> Result<Endpoint, RouteError> {
    // Downloads keep their file names exactly; everything else may end in `.json`.
    if let Some(path) = rest.strip_prefix("module/asset/downloads/originals/") {
        return match *method {
            Method::GET | Method::HEAD => Ok(Endpoint::DownloadOriginal(path.to_string())),
            _ => Err(RouteError::Method("GET, HEAD")),
        };
    }
    let rest = rest.strip_suffix(".json").unwrap_or(rest);
    let any = |e: Endpoint| Ok(e);
    let post_or_get = |e: Endpoint| match *method {
        Method::GET | Method::POST => Ok(e),
        _ => Err(RouteError::Method("GET, POST")),
    };
    let post = |e: Endpoint| match *method {
        Method::POST => Ok(e),
        _ => Err(RouteError::Method("POST")),
    };
    match rest {
        "authentication/login" => post_or_get(Endpoint::Login),
        "authentication/getkey" => post_or_get(Endpoint::GetKey),
        "authentication/logout" => post_or_get(Endpoint::Logout),
        "system/systemstatus" => any(Endpoint::SystemStatus),
        "module/asset/create" => post(Endpoint::AssetCreate),
        "module/asset/search" => post_or_get(Endpoint::AssetSearch),
        "module/asset/deleteassets" => post(Endpoint::DeleteAssets),
        "module/asset/trash/search" => post_or_get(Endpoint::TrashSearch),
        "module/asset/trash/restore" => post(Endpoint::TrashRestore),
        "module/asset/trash/purge" => post(Endpoint::TrashPurge),
        _ => {
            if let Some(id) = rest.strip_prefix("module/asset/jobs/") {
                return match (*method == Method::GET, valid_segment(id)) {
                    (true, true) => Ok(Endpoint::JobStatus(id.to_string())),
                    (false, true) => Err(RouteError::Method("GET")),
                    _ => Err(RouteError::NotFound),
                };
            }
            if let Some(t) = rest.strip_prefix("lists/search/") {
                return match valid_segment(t) {
                    true => post_or_get(Endpoint::ListSearch(t.to_string())),
                    false => Err(RouteError::NotFound),
                };
            }
            if let Some(id) = rest.strip_prefix("module/asset/data/") {
                if id.is_empty() || id.contains('/') {
                    return Err(RouteError::NotFound);
                }
                let id = id.to_string();
                return match *method {
                    Method::GET | Method::HEAD => Ok(Endpoint::AssetGet(id)),
                    Method::PUT | Method::PATCH => Ok(Endpoint::AssetUpdate(id)),
                    Method::DELETE => Ok(Endpoint::AssetDelete(id)),
                    Method::POST => Ok(Endpoint::AssetCreate),
                    _ => Err(RouteError::Method("GET, PUT, POST, DELETE")),
                };
            }
            Err(RouteError::NotFound)
        }
    }
}

/// A single non-empty path segment of safe characters.
fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_emdb_paths() {
        assert_eq!(
            decode(&Method::POST, "module/asset/deleteassets"),
            Ok(Endpoint::DeleteAssets)
        );
        assert_eq!(
            decode(&Method::POST, "module/asset/deleteassets.json"),
            Ok(Endpoint::DeleteAssets)
        );
        assert_eq!(
            decode(&Method::GET, "module/asset/data/101.json"),
            Ok(Endpoint::AssetGet("101".into()))
        );
        assert_eq!(
            decode(&Method::PUT, "module/asset/data/index.html"),
            Ok(Endpoint::AssetUpdate("index.html".into()))
        );
        assert_eq!(
            decode(&Method::POST, "module/asset/data/create"),
            Ok(Endpoint::AssetCreate)
        );
        assert_eq!(
            decode(&Method::GET, "module/asset/downloads/originals/a/x.json/x.json"),
            Ok(Endpoint::DownloadOriginal("a/x.json/x.json".into()))
        );
        assert_eq!(
            decode(&Method::GET, "module/asset/deleteassets"),
            Err(RouteError::Method("POST"))
        );
        assert_eq!(decode(&Method::GET, "module/asset/nothing"), Err(RouteError::NotFound));
        assert_eq!(decode(&Method::GET, "module/asset/data/a/b"), Err(RouteError::NotFound));
    }

    #[test]
    fn every_sample_decodes_and_only_the_public_list_is_public() {
        for (m, p) in Endpoint::samples() {
            let e = decode(&m, p).unwrap_or_else(|_| panic!("{m} {p}"));
            let public = matches!(e, Endpoint::Login | Endpoint::GetKey | Endpoint::SystemStatus);
            assert_eq!(e.access() == Access::Public, public, "{p}");
        }
    }
}
