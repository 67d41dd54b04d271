//! Source paths: where an asset lives in the catalog's tree (`Clients/X/photo.jpg`).
//!
//! A source path is a name, not a file-system path (originals are stored under random
//! blob keys), but it still appears in URLs and exports, so it is held to the rules of
//! a safe relative path: no `..`, no control characters, no backslashes.

use super::Invalid;
use chrono::{Datelike, Timelike, Utc};

const MAX_LEN: usize = 1024;

/// What the `${...}` variables of a source-path mask may refer to.
pub struct MaskContext<'a> {
    pub filename: Option<&'a str>,
    pub user: &'a str,
    /// Any other request parameter, as EnterMediaDB allows (`${division}`).
    pub param: &'a dyn Fn(&str) -> Option<String>,
}

/// Expands the masks of a requested source path (`${filename}`, `${formatteddate}`, ...),
/// appends the file name to a folder path (`Clients/X/`), and validates the result.
pub fn resolve(requested: &str, ctx: &MaskContext) -> Result<String, Invalid> {
    let expanded = expand(requested, ctx)?;
    let mut path = expanded.clone();
    if path.ends_with('/') {
        if let Some(name) = ctx.filename {
            path.push_str(name);
        }
    }
    normalize(&path)
}

/// The default source path when the client names none: `{user}/{yyyy}/{MM}/{filename}`.
pub fn default_for(user: &str, filename: Option<&str>, id: &str) -> Result<String, Invalid> {
    let now = Utc::now();
    let leaf = filename.unwrap_or(id);
    normalize(&format!("{user}/{:04}/{:02}/{leaf}", now.year(), now.month()))
}

/// Cleans and validates a source path: backslashes and control characters are refused,
/// `//` collapsed, leading and trailing `/` removed, `.` and `..` segments refused.
pub fn normalize(path: &str) -> Result<String, Invalid> {
    if path.len() > MAX_LEN {
        return Err(Invalid::new(format!("sourcepath is longer than {MAX_LEN} bytes")));
    }
    if path.chars().any(|c| c.is_control()) {
        return Err(Invalid::new("sourcepath contains a control character"));
    }
    if path.contains('\\') {
        return Err(Invalid::new("sourcepath contains a backslash; use / between folders"));
    }
    let mut parts = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" => continue,
            "." | ".." => {
                return Err(Invalid::new(format!(
                    "sourcepath \"{path}\" contains a \"{seg}\" segment"
                )))
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return Err(Invalid::new("sourcepath is empty"));
    }
    Ok(parts.join("/"))
}

fn expand(mask: &str, ctx: &MaskContext) -> Result<String, Invalid> {
    let mut out = String::with_capacity(mask.len());
    let mut rest = mask;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| Invalid::new("sourcepath has an unclosed ${"))?;
        let var = &after[..end];
        out.push_str(&variable(var, ctx)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn variable(var: &str, ctx: &MaskContext) -> Result<String, Invalid> {
    let now = Utc::now();
    let guid = || {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        (0..13)
            .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
            .collect::<String>()
    };
    let filename = || {
        ctx.filename
            .map(str::to_string)
            .ok_or_else(|| Invalid::new(format!("sourcepath uses ${{{var}}} but no file was uploaded")))
    };
    Ok(match var {
        "filename" => filename()?,
        "extension" => super::filetypes::extension_of(&filename()?).unwrap_or_default(),
        "rendertype" => {
            let ext = super::filetypes::extension_of(&filename()?).unwrap_or_default();
            super::filetypes::render_type(&ext).to_string()
        }
        "guid" | "shortguid" => guid(),
        "splitguid" => {
            let g = guid();
            format!("{}/{}", &g[..2], &g[2..])
        }
        "formatteddate" => format!("{:04}/{:02}", now.year(), now.month()),
        "formattedyear" => format!("{:04}", now.year()),
        "formattedmonth" => format!("{:02}", now.month()),
        "formattedday" => format!("{:02}", now.day()),
        "formattedhour" => format!("{:02}", now.hour()),
        "user" | "user.userName" | "user.id" | "username" => ctx.user.to_string(),
        other => (ctx.param)(other).ok_or_else(|| {
            Invalid::new(format!(
                "sourcepath uses ${{{other}}}, which names no known variable or parameter"
            ))
        })?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(filename: Option<&'a str>, f: &'a dyn Fn(&str) -> Option<String>) -> MaskContext<'a> {
        MaskContext {
            filename,
            user: "admin",
            param: f,
        }
    }

    #[test]
    fn folder_paths_get_the_file_name() {
        let none = |_: &str| None;
        let c = ctx(Some("a.jpg"), &none);
        assert_eq!(resolve("Clients/TK2/2020-6/", &c).unwrap(), "Clients/TK2/2020-6/a.jpg");
        assert_eq!(resolve("/Clients//X/${filename}", &c).unwrap(), "Clients/X/a.jpg");
        assert_eq!(resolve("p/${extension}/${user}", &c).unwrap(), "p/jpg/admin");
    }

    #[test]
    fn masks_and_params() {
        let p = |k: &str| (k == "division").then(|| "north".to_string());
        let c = ctx(Some("a.jpg"), &p);
        assert_eq!(resolve("${division}/${filename}", &c).unwrap(), "north/a.jpg");
        assert!(resolve("${nope}/x", &c).is_err());
        assert!(resolve("${filename", &c).is_err());
        let d = resolve("${formatteddate}/${filename}", &c).unwrap();
        assert_eq!(d.len(), "2024/05/a.jpg".len());
    }

    #[test]
    fn traversal_is_refused() {
        for bad in ["../etc/passwd", "a/../../b", "a/./b", "a\\b", "a\0b", "", "///", "a\nb"] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
        assert_eq!(normalize("a/b.c/d..e").unwrap(), "a/b.c/d..e");
    }
}
