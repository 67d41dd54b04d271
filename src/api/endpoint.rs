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
    UserCreate,
    UserSearch,
    UserGet(String),
    UserUpdate(String),
    UserDelete(String),
    /// `settings/users/groupadd` and `groupremove`.
    UserGroup {
        add: bool,
    },
    /// `settings/users/keys`: a user's keys (never the keys themselves).
    UserKeys,
    /// `settings/users/revokekeys`: one key by id, or all of a user's keys.
    UserRevokeKeys,
    GroupCreate,
    GroupSearch,
    GroupGet(String),
    GroupUpdate(String),
    GroupDelete(String),
    /// `generated/{sourcepath}/{file}` and `downloads/preset/...`: a stored rendition.
    Generated(String),
    /// `generate/{sourcepath}/{file}/{exportname}` and `downloads/generated/...`.
    Generate(String),
    ConvertAsset,
    ListConversions,
    RemoveAssetImages,
    RotateAsset,
    /// `module/asset/media/customthumb`: an uploaded image becomes the previews' source.
    CustomThumb,
    /// `lists/create/{table}` and `module/{module}/create` for any table but assets.
    RecordCreate {
        table: String,
        module: bool,
    },
    /// `lists/data/{table}/{id}` and `module/{module}/data/{id}`.
    RecordGet {
        table: String,
        id: String,
    },
    RecordUpdate {
        table: String,
        id: String,
        module: bool,
    },
    RecordDelete {
        table: String,
        id: String,
        module: bool,
    },
    /// `module/category/tree`: the category tree, raw.
    CategoryTree,
    /// `module/asset/assetdetails`: one asset with its preview links (wire §5.3).
    AssetDetails,
    /// `authentication/validateuser`: checks an id and password, issues no key.
    ValidateUser,
    /// `module/librarycollection/addassets` and `removeassets`.
    CollectionAssets {
        add: bool,
    },
    /// `module/librarycollection/searchassets`.
    CollectionSearchAssets,
    /// `module/librarycollection/downloadzip`: the collection's originals as one streamed ZIP.
    CollectionDownload,
    /// `lists/export/{table}` and `module/{module}/export`: a table's matches as CSV.
    RecordExport(String),
    /// `module/{module}/searchorcreate`: the record with the given `name`, else a new one.
    RecordSearchOrCreate(String),
    /// `module/asset/clone`: a copy of an asset and its original (wire §5.6).
    AssetClone,
    /// `module/order/basketadd` and `basketremove`: the caller's basket.
    Basket {
        add: bool,
    },
    /// `module/order/listorderitems`: the caller's basket.
    OrderItems,
    /// `module/order/orderdownload`: basket or listed assets as one ZIP (originals or a preset).
    OrderDownload,
    /// `test/helloworld`: a fixed answer, for checking a connection.
    HelloWorld,
    /// `system/acceptingconnections`: whether this server's database and storage answer.
    AcceptingConnections,
    /// `system/softwareversions`: the server's version and its store's.
    SoftwareVersions,
    /// `system/cleardatacache`: the per-process caches dropped.
    ClearDataCache,
    /// `module/order/listopenorders`: the caller's orders of the last 90 days.
    OpenOrders,
    /// `module/order/recentorderitems`: those orders with their items.
    RecentOrderItems,
    /// `module/order/orderdetails` and `updateorderstatus`: one order with its items.
    OrderDetails,
    /// `module/asset/versions/getrevisions`.
    Revisions,
    /// `module/asset/versions/restoreversion`.
    RestoreVersion,
    /// `settings/modules/create`: registers a custom module (its table).
    ModuleCreate,
    /// `settings/modules/list` (and `search`).
    ModuleList,
    ModuleGet(String),
    ModuleUpdate(String),
    ModuleDelete(String),
    /// `settings/datamanager/listtables`.
    DmListTables,
    /// `settings/datamanager/fields/listfields`.
    DmListFields,
    /// `settings/datamanager/fields/addnew`: a custom asset field.
    DmAddField,
    /// `settings/datamanager/fields/remove`.
    DmRemoveField,
    /// `settings/datamanager/table/reindex`.
    DmReindex,
    /// `settings/datamanager/table/export/{searchtype}.csv`.
    DmExport(String),
    /// `settings/datamanager/table/import` (and EMDB's `table/import/import`): a CSV file
    /// read back into a table.
    DmImport,
    /// `settings/datamanager/addtable`: a data table of its own name.
    DmAddTable,
    /// `settings/datamanager/table/deletetable`: an added table and its records.
    DmDeleteTable,
    /// `settings/datamanager/fields/save`: a custom field redefined.
    DmSaveField,
    /// `settings/datamanager/reload`: definitions read again.
    DmReload,
    /// `settings/users/export/{name}.csv`: every user as CSV.
    UserExport,
    /// `settings/users/import` (and EMDB's `import/import`): users from a CSV file.
    UserImport,
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// Any valid key.
    Authenticated,
    Requires(Permission),
    /// The permission, or being the user the call is about (`settings/users/data/{id}`).
    SelfOr(Permission),
}

impl Endpoint {
    pub fn access(&self) -> Access {
        use Endpoint::*;
        match self {
            Login | GetKey | SystemStatus | HelloWorld | AcceptingConnections => Access::Public,
            SoftwareVersions => Access::Authenticated,
            ClearDataCache => Access::Requires(Permission::ManageList),
            Logout => Access::Authenticated,
            AssetCreate => Access::Requires(Permission::CreateData),
            AssetGet(_) => Access::Requires(Permission::LoadData),
            AssetUpdate(_) => Access::Requires(Permission::UpdateData),
            AssetDelete(_) | DeleteAssets => Access::Requires(Permission::DeleteData),
            AssetSearch => Access::Requires(Permission::SearchData),
            DownloadOriginal(_) => Access::Requires(Permission::Download),
            TrashSearch | TrashRestore | TrashPurge => Access::Requires(Permission::ManageTrash),
            JobStatus(_) => Access::Authenticated,
            // The endpoint catalog describes the API itself; the API page shows it before sign-in.
            ListSearch(t) if t == "endpoint" || t == "docsection" => Access::Public,
            ListSearch(t) if t == "auditlog" => Access::Requires(Permission::ManageUsers),
            // Order items are per user; through the generic search only for user managers.
            ListSearch(t) if t == crate::api::orders::TABLE || t == crate::api::orders::ORDERS => {
                Access::Requires(Permission::ManageUsers)
            }
            ListSearch(_) => Access::Requires(Permission::SearchData),
            UserGet(_) | UserUpdate(_) => Access::SelfOr(Permission::ManageUsers),
            UserCreate
            | UserSearch
            | UserDelete(_)
            | UserGroup { .. }
            | UserKeys
            | UserRevokeKeys
            | UserExport
            | UserImport => Access::Requires(Permission::ManageUsers),
            GroupCreate | GroupSearch | GroupGet(_) | GroupUpdate(_) | GroupDelete(_) => {
                Access::Requires(Permission::ManageUsers)
            }
            Generated(_) | Generate(_) => Access::Requires(Permission::Download),
            ListConversions => Access::Requires(Permission::LoadData),
            ConvertAsset | RemoveAssetImages | RotateAsset | CustomThumb => Access::Requires(Permission::UpdateData),
            RecordCreate { .. } => Access::Requires(Permission::CreateData),
            RecordGet { table, .. } if table == "auditlog" || table == crate::api::orders::ORDERS => {
                Access::Requires(Permission::ManageUsers)
            }
            RecordGet { .. } => Access::Requires(Permission::LoadData),
            RecordUpdate { .. } => Access::Requires(Permission::UpdateData),
            RecordDelete { .. } => Access::Requires(Permission::DeleteData),
            CategoryTree => Access::Requires(Permission::SearchData),
            AssetDetails => Access::Requires(Permission::LoadData),
            ValidateUser => Access::Public,
            CollectionAssets { .. } => Access::Requires(Permission::UpdateData),
            CollectionSearchAssets => Access::Requires(Permission::SearchData),
            CollectionDownload | OrderDownload => Access::Requires(Permission::Download),
            RecordExport(t)
                if matches!(t.as_str(), "auditlog" | "user" | "group")
                    || t == crate::api::orders::TABLE
                    || t == crate::api::orders::ORDERS =>
            {
                Access::Requires(Permission::ManageUsers)
            }
            RecordExport(_) => Access::Requires(Permission::SearchData),
            RecordSearchOrCreate(_) | AssetClone => Access::Requires(Permission::CreateData),
            Basket { .. } | OrderItems | OpenOrders | RecentOrderItems | OrderDetails => {
                Access::Requires(Permission::LoadData)
            }
            Revisions => Access::Requires(Permission::LoadData),
            RestoreVersion => Access::Requires(Permission::UpdateData),
            ModuleCreate | ModuleList | ModuleGet(_) | ModuleUpdate(_) | ModuleDelete(_) => {
                Access::Requires(Permission::ManageModules)
            }
            DmListTables | DmListFields | DmAddField | DmRemoveField | DmReindex | DmExport(_) | DmImport
            | DmAddTable | DmDeleteTable | DmSaveField | DmReload => Access::Requires(Permission::ManageList),
        }
    }

    /// The user a `SelfOr` endpoint is about.
    pub fn target_user(&self) -> Option<&str> {
        match self {
            Endpoint::UserGet(id) | Endpoint::UserUpdate(id) => Some(id),
            _ => None,
        }
    }

    /// Whether the request body is streamed to the handler (uploads) instead of read whole.
    pub fn streams_body(&self) -> bool {
        matches!(
            self,
            Endpoint::AssetCreate | Endpoint::CustomThumb | Endpoint::DmImport | Endpoint::UserImport
        )
    }

    /// One sample of every endpoint, for tests that walk the route table.
    pub fn samples() -> Vec<(Method, &'static str)> {
        vec![
            (Method::POST, "authentication/login"),
            (Method::POST, "authentication/getkey"),
            (Method::POST, "authentication/logout"),
            (Method::GET, "system/systemstatus"),
            (Method::GET, "test/helloworld"),
            (Method::GET, "system/acceptingconnections"),
            (Method::GET, "system/softwareversions"),
            (Method::POST, "system/cleardatacache"),
            (Method::POST, "module/asset/create"),
            (Method::GET, "module/asset/data/101"),
            (Method::PUT, "module/asset/data/101"),
            (Method::DELETE, "module/asset/data/101"),
            (Method::POST, "module/asset/search"),
            (Method::POST, "module/asset/deleteassets"),
            (Method::GET, "module/asset/downloads/originals/a/b.jpg/b.jpg"),
            (Method::POST, "module/asset/trash/search"),
            (Method::POST, "module/asset/trash/restore"),
            (Method::POST, "module/asset/trash/purge"),
            (Method::GET, "module/asset/jobs/20260101000000abcdef"),
            (Method::POST, "lists/search/auditlog"),
            (Method::POST, "lists/search/purpose"),
            (Method::POST, "lists/search/endpoint"),
            (Method::POST, "settings/users/create"),
            (Method::POST, "settings/users/search"),
            (Method::GET, "settings/users/data/someone"),
            (Method::PUT, "settings/users/data/someone"),
            (Method::DELETE, "settings/users/data/someone"),
            (Method::POST, "settings/users/groupadd"),
            (Method::POST, "settings/users/groupremove"),
            (Method::POST, "settings/users/keys"),
            (Method::POST, "settings/users/revokekeys"),
            (Method::GET, "settings/users/export/user.csv"),
            (Method::POST, "settings/users/import"),
            (Method::POST, "settings/groups/create"),
            (Method::POST, "settings/groups/search"),
            (Method::GET, "settings/groups/data/somegroup"),
            (Method::PUT, "settings/groups/data/somegroup"),
            (Method::DELETE, "settings/groups/data/somegroup"),
            (Method::GET, "module/asset/generated/a/b.jpg/image200x200.jpg"),
            (Method::GET, "module/asset/generate/a/b.jpg/image200x200.jpg/bT.jpg"),
            (Method::POST, "module/asset/media/convertasset"),
            (Method::POST, "module/asset/media/listconversions"),
            (Method::POST, "module/asset/media/removeassetimages"),
            (Method::POST, "module/asset/media/rotateasset"),
            (Method::POST, "module/asset/media/customthumb"),
            (Method::POST, "lists/create/purpose"),
            (Method::GET, "lists/data/purpose/sales"),
            (Method::PUT, "lists/data/purpose/sales"),
            (Method::DELETE, "lists/data/purpose/sales"),
            (Method::POST, "module/librarycollection/search"),
            (Method::POST, "module/category/tree"),
            (Method::POST, "module/asset/assetdetails"),
            (Method::POST, "authentication/validateuser"),
            (Method::POST, "module/librarycollection/addassets"),
            (Method::POST, "module/librarycollection/removeassets"),
            (Method::POST, "module/librarycollection/searchassets"),
            (Method::POST, "module/librarycollection/downloadzip"),
            (Method::POST, "lists/export/purpose"),
            (Method::POST, "module/purpose/searchorcreate"),
            (Method::POST, "module/asset/clone"),
            (Method::POST, "module/order/basketadd"),
            (Method::POST, "module/order/basketremove"),
            (Method::POST, "module/order/listorderitems"),
            (Method::POST, "module/order/orderdownload"),
            (Method::GET, "module/order/listopenorders"),
            (Method::POST, "module/order/recentorderitems"),
            (Method::POST, "module/order/orderdetails"),
            (Method::POST, "module/asset/versions/getrevisions"),
            (Method::POST, "module/asset/versions/restoreversion"),
            (Method::POST, "settings/modules/create"),
            (Method::POST, "settings/modules/list"),
            (Method::GET, "settings/modules/data/project"),
            (Method::PUT, "settings/modules/data/project"),
            (Method::DELETE, "settings/modules/data/project"),
            (Method::POST, "settings/datamanager/listtables"),
            (Method::POST, "settings/datamanager/fields/listfields"),
            (Method::POST, "settings/datamanager/fields/addnew"),
            (Method::POST, "settings/datamanager/fields/remove"),
            (Method::POST, "settings/datamanager/table/reindex"),
            (Method::GET, "settings/datamanager/table/export/asset.csv"),
            (Method::POST, "settings/datamanager/table/import"),
            (Method::POST, "settings/datamanager/addtable"),
            (Method::POST, "settings/datamanager/table/deletetable"),
            (Method::POST, "settings/datamanager/fields/save"),
            (Method::POST, "settings/datamanager/reload"),
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
    for (prefix, generate) in [
        ("module/asset/generated/", false),
        ("module/asset/downloads/preset/", false),
        ("module/asset/generate/", true),
        ("module/asset/downloads/generated/", true),
    ] {
        if let Some(path) = rest.strip_prefix(prefix) {
            return match (*method == Method::GET || *method == Method::HEAD, generate) {
                (false, _) => Err(RouteError::Method("GET, HEAD")),
                (true, false) => Ok(Endpoint::Generated(path.to_string())),
                (true, true) => Ok(Endpoint::Generate(path.to_string())),
            };
        }
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
        "test/helloworld" | "test/helloworld.json" => any(Endpoint::HelloWorld),
        "system/acceptingconnections" => any(Endpoint::AcceptingConnections),
        "system/softwareversions" => post_or_get(Endpoint::SoftwareVersions),
        "system/cleardatacache" => post(Endpoint::ClearDataCache),
        "module/asset/create" => post(Endpoint::AssetCreate),
        "module/asset/search" => post_or_get(Endpoint::AssetSearch),
        "module/asset/deleteassets" => post(Endpoint::DeleteAssets),
        "module/asset/trash/search" => post_or_get(Endpoint::TrashSearch),
        "module/asset/trash/restore" => post(Endpoint::TrashRestore),
        "module/asset/trash/purge" => post(Endpoint::TrashPurge),
        "module/category/tree" => post_or_get(Endpoint::CategoryTree),
        "module/asset/assetdetails" => post_or_get(Endpoint::AssetDetails),
        "authentication/validateuser" => post_or_get(Endpoint::ValidateUser),
        "module/librarycollection/addassets" => post(Endpoint::CollectionAssets { add: true }),
        "module/librarycollection/removeassets" => post(Endpoint::CollectionAssets { add: false }),
        "module/librarycollection/searchassets" => post_or_get(Endpoint::CollectionSearchAssets),
        "module/librarycollection/downloadzip" => post_or_get(Endpoint::CollectionDownload),
        "module/asset/clone" => post(Endpoint::AssetClone),
        "module/order/basketadd" => post(Endpoint::Basket { add: true }),
        "module/order/basketremove" => post(Endpoint::Basket { add: false }),
        "module/order/listorderitems" | "module/order/basketlist" => post_or_get(Endpoint::OrderItems),
        "module/order/orderdownload" => post_or_get(Endpoint::OrderDownload),
        "module/order/listopenorders" => post_or_get(Endpoint::OpenOrders),
        "module/order/recentorderitems" => post_or_get(Endpoint::RecentOrderItems),
        "module/order/orderdetails" | "module/order/updateorderstatus" => post_or_get(Endpoint::OrderDetails),
        "module/asset/versions/getrevisions" => post_or_get(Endpoint::Revisions),
        "module/asset/versions/restoreversion" => post(Endpoint::RestoreVersion),
        "settings/modules/create" => post(Endpoint::ModuleCreate),
        "settings/modules/list" | "settings/modules/search" => post_or_get(Endpoint::ModuleList),
        "settings/datamanager/listtables" => post_or_get(Endpoint::DmListTables),
        "settings/datamanager/fields/listfields" => post_or_get(Endpoint::DmListFields),
        "settings/datamanager/fields/addnew" => post(Endpoint::DmAddField),
        "settings/datamanager/fields/remove" => post(Endpoint::DmRemoveField),
        "settings/datamanager/table/reindex" => post(Endpoint::DmReindex),
        "settings/datamanager/table/import" | "settings/datamanager/table/import/import" => post(Endpoint::DmImport),
        "settings/datamanager/addtable" | "settings/datamanager/table/addtable" => post(Endpoint::DmAddTable),
        "settings/datamanager/table/deletetable" | "settings/datamanager/deletetable" => post(Endpoint::DmDeleteTable),
        "settings/datamanager/fields/save" => post(Endpoint::DmSaveField),
        "settings/datamanager/reload" => post_or_get(Endpoint::DmReload),
        "module/asset/media/convertasset" => post(Endpoint::ConvertAsset),
        "module/asset/media/listconversions" => post_or_get(Endpoint::ListConversions),
        "module/asset/media/removeassetimages" => post(Endpoint::RemoveAssetImages),
        "module/asset/media/rotateasset" => post(Endpoint::RotateAsset),
        "module/asset/media/customthumb" => post(Endpoint::CustomThumb),
        "settings/users/create" => post(Endpoint::UserCreate),
        "settings/users/search" => post_or_get(Endpoint::UserSearch),
        "settings/users/groupadd" => post(Endpoint::UserGroup { add: true }),
        "settings/users/groupremove" => post(Endpoint::UserGroup { add: false }),
        "settings/users/keys" => post_or_get(Endpoint::UserKeys),
        "settings/users/revokekeys" => post(Endpoint::UserRevokeKeys),
        "settings/users/import" | "settings/users/import/import" => post(Endpoint::UserImport),
        "settings/groups/create" => post(Endpoint::GroupCreate),
        "settings/groups/search" => post_or_get(Endpoint::GroupSearch),
        _ => {
            for (prefix, users) in [("settings/users/data/", true), ("settings/groups/data/", false)] {
                if let Some(id) = rest.strip_prefix(prefix) {
                    if !valid_segment(id) {
                        return Err(RouteError::NotFound);
                    }
                    let id = id.to_string();
                    return match (method.clone(), users) {
                        (Method::GET, true) => Ok(Endpoint::UserGet(id)),
                        (Method::PUT | Method::POST, true) => Ok(Endpoint::UserUpdate(id)),
                        (Method::DELETE, true) => Ok(Endpoint::UserDelete(id)),
                        (Method::GET, false) => Ok(Endpoint::GroupGet(id)),
                        (Method::PUT | Method::POST, false) => Ok(Endpoint::GroupUpdate(id)),
                        (Method::DELETE, false) => Ok(Endpoint::GroupDelete(id)),
                        _ => Err(RouteError::Method("GET, PUT, POST, DELETE")),
                    };
                }
            }
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
            if let Some(path) = rest.strip_prefix("lists/create/") {
                return match valid_segment(path) {
                    true => post(Endpoint::RecordCreate {
                        table: path.to_string(),
                        module: false,
                    }),
                    false => Err(RouteError::NotFound),
                };
            }
            if let Some(name) = rest.strip_prefix("settings/users/export/") {
                return match valid_segment(name) {
                    true => post_or_get(Endpoint::UserExport),
                    false => Err(RouteError::NotFound),
                };
            }
            if let Some(t) = rest.strip_prefix("settings/datamanager/table/export/") {
                return match valid_segment(t) {
                    true => post_or_get(Endpoint::DmExport(t.to_string())),
                    false => Err(RouteError::NotFound),
                };
            }
            if let Some(id) = rest.strip_prefix("settings/modules/data/") {
                if !valid_segment(id) {
                    return Err(RouteError::NotFound);
                }
                let id = id.to_string();
                return match *method {
                    Method::GET | Method::HEAD => Ok(Endpoint::ModuleGet(id)),
                    Method::PUT | Method::POST | Method::PATCH => Ok(Endpoint::ModuleUpdate(id)),
                    Method::DELETE => Ok(Endpoint::ModuleDelete(id)),
                    _ => Err(RouteError::Method("GET, PUT, POST, DELETE")),
                };
            }
            if let Some(t) = rest.strip_prefix("lists/export/") {
                return match valid_segment(t) {
                    true => post_or_get(Endpoint::RecordExport(t.to_string())),
                    false => Err(RouteError::NotFound),
                };
            }
            if let Some(path) = rest.strip_prefix("lists/data/") {
                return record_data(method, path, false);
            }
            if let Some(path) = rest.strip_prefix("module/").filter(|p| !p.starts_with("asset/")) {
                let (module, tail) = path.split_once('/').ok_or(RouteError::NotFound)?;
                if !valid_segment(module) {
                    return Err(RouteError::NotFound);
                }
                return match tail {
                    "create" => post(Endpoint::RecordCreate {
                        table: module.to_string(),
                        module: true,
                    }),
                    "search" | "list" => post_or_get(Endpoint::ListSearch(module.to_string())),
                    "export" => post_or_get(Endpoint::RecordExport(module.to_string())),
                    "searchorcreate" => post(Endpoint::RecordSearchOrCreate(module.to_string())),
                    _ => match tail.strip_prefix("data/") {
                        Some(id) => record_data(method, &format!("{module}/{id}"), true),
                        None => Err(RouteError::NotFound),
                    },
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

/// `{table}/{id}` of a generic record.
fn record_data(method: &Method, path: &str, module: bool) -> Result<Endpoint, RouteError> {
    let (table, id) = path.split_once('/').ok_or(RouteError::NotFound)?;
    if !valid_segment(table) || !valid_segment(id) {
        return Err(RouteError::NotFound);
    }
    let (table, id) = (table.to_string(), id.to_string());
    match *method {
        Method::GET | Method::HEAD => Ok(Endpoint::RecordGet { table, id }),
        Method::PUT | Method::POST | Method::PATCH => Ok(Endpoint::RecordUpdate { table, id, module }),
        Method::DELETE => Ok(Endpoint::RecordDelete { table, id, module }),
        _ => Err(RouteError::Method("GET, PUT, POST, DELETE")),
    }
}

/// A single non-empty path segment of safe characters.
fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
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

    /// An exhaustive match: a new endpoint fails to compile here until it is numbered,
    /// and the test below fails until `samples()` covers it.
    fn variant_index(e: &Endpoint) -> usize {
        use Endpoint::*;
        match e {
            Login => 0,
            GetKey => 1,
            Logout => 2,
            SystemStatus => 3,
            AssetCreate => 4,
            AssetGet(_) => 5,
            AssetUpdate(_) => 6,
            AssetDelete(_) => 7,
            AssetSearch => 8,
            DeleteAssets => 9,
            DownloadOriginal(_) => 10,
            TrashSearch => 11,
            TrashRestore => 12,
            TrashPurge => 13,
            JobStatus(_) => 14,
            ListSearch(_) => 15,
            UserCreate => 16,
            UserSearch => 17,
            UserGet(_) => 18,
            UserUpdate(_) => 19,
            UserDelete(_) => 20,
            UserGroup { .. } => 21,
            UserKeys => 22,
            UserRevokeKeys => 23,
            GroupCreate => 24,
            GroupSearch => 25,
            GroupGet(_) => 26,
            GroupUpdate(_) => 27,
            GroupDelete(_) => 28,
            Generated(_) => 29,
            Generate(_) => 30,
            ConvertAsset => 31,
            ListConversions => 32,
            RemoveAssetImages => 33,
            RotateAsset => 34,
            RecordCreate { .. } => 35,
            RecordGet { .. } => 36,
            RecordUpdate { .. } => 37,
            RecordDelete { .. } => 38,
            CategoryTree => 39,
            AssetDetails => 40,
            ValidateUser => 41,
            CollectionAssets { .. } => 42,
            CollectionSearchAssets => 43,
            CollectionDownload => 44,
            RecordExport(_) => 45,
            RecordSearchOrCreate(_) => 46,
            AssetClone => 47,
            Basket { .. } => 48,
            OrderItems => 49,
            OrderDownload => 50,
            Revisions => 51,
            RestoreVersion => 52,
            ModuleCreate => 53,
            ModuleList => 54,
            ModuleGet(_) => 55,
            ModuleUpdate(_) => 56,
            ModuleDelete(_) => 57,
            DmListTables => 58,
            DmListFields => 59,
            DmAddField => 60,
            DmRemoveField => 61,
            DmReindex => 62,
            DmExport(_) => 63,
            CustomThumb => 64,
            OpenOrders => 65,
            RecentOrderItems => 66,
            OrderDetails => 67,
            DmImport => 68,
            UserExport => 69,
            UserImport => 70,
            DmAddTable => 71,
            DmDeleteTable => 72,
            DmSaveField => 73,
            DmReload => 74,
            HelloWorld => 75,
            AcceptingConnections => 76,
            SoftwareVersions => 77,
            ClearDataCache => 78,
        }
    }
    const VARIANTS: usize = 79;

    #[test]
    fn samples_cover_every_endpoint() {
        let mut seen = [false; VARIANTS];
        for (m, p) in Endpoint::samples() {
            seen[variant_index(&decode(&m, p).unwrap())] = true;
        }
        let missing: Vec<usize> = (0..VARIANTS).filter(|i| !seen[*i]).collect();
        assert!(missing.is_empty(), "endpoints without a sample: {missing:?}");
    }

    #[test]
    fn every_sample_decodes_and_only_the_public_list_is_public() {
        for (m, p) in Endpoint::samples() {
            let e = decode(&m, p).unwrap_or_else(|_| panic!("{m} {p}"));
            let public = matches!(
                e,
                Endpoint::Login
                    | Endpoint::GetKey
                    | Endpoint::SystemStatus
                    | Endpoint::ValidateUser
                    | Endpoint::HelloWorld
                    | Endpoint::AcceptingConnections
            ) || matches!(&e, Endpoint::ListSearch(t) if t == "endpoint");
            assert_eq!(e.access() == Access::Public, public, "{p}");
        }
    }
}
