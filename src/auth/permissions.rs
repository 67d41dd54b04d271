//! Permission ids: EnterMediaDB's `api-*` vocabulary (wire §4.7) plus MediaDB's own.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    SearchData,
    LoadData,
    CreateData,
    UpdateData,
    DeleteData,
    Download,
    ManageUsers,
    ManageModules,
    ManageList,
    ManageEvents,
    ManageTrash,
}

impl Permission {
    pub const ALL: &'static [Permission] = &[
        Permission::SearchData,
        Permission::LoadData,
        Permission::CreateData,
        Permission::UpdateData,
        Permission::DeleteData,
        Permission::Download,
        Permission::ManageUsers,
        Permission::ManageModules,
        Permission::ManageList,
        Permission::ManageEvents,
        Permission::ManageTrash,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Permission::SearchData => "api-search-data",
            Permission::LoadData => "api-load-data",
            Permission::CreateData => "api-create-data",
            Permission::UpdateData => "api-update-data",
            Permission::DeleteData => "api-delete-data",
            Permission::Download => "api-download",
            Permission::ManageUsers => "api-manage-users",
            Permission::ManageModules => "api-manage-modules",
            Permission::ManageList => "api-manage-list",
            Permission::ManageEvents => "api-manage-events",
            Permission::ManageTrash => "api-manage-trash",
        }
    }
}

/// The group every permission belongs to; the bootstrap admin is in it.
pub const ADMINISTRATORS: &str = "administrators";
/// The group of ordinary users: they may find, read, add, edit and download assets.
pub const USERS: &str = "users";

pub fn default_user_permissions() -> Vec<&'static str> {
    [
        Permission::SearchData,
        Permission::LoadData,
        Permission::CreateData,
        Permission::UpdateData,
        Permission::Download,
    ]
    .iter()
    .map(|p| p.id())
    .collect()
}
