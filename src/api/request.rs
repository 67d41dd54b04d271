//! Reading a request the way EnterMediaDB does: the site from the URL, parameters from
//! one merged namespace (query string, then form fields, then the top-level keys of a
//! JSON body), and the `entermedia.key` from wherever a client put it.

use super::error::{ApiError, ApiResult};
use super::lenient_json;
use axum::http::{header, HeaderMap};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

/// The parts of a `/{siteid}/mediadb/...` path.
#[derive(Debug, PartialEq, Eq)]
pub struct SitePath<'a> {
    /// `None` for the host-mapped `/mediadb/...` form.
    pub site: Option<&'a str>,
    /// What follows `/mediadb/` (e.g. `services/module/asset/search`).
    pub rest: &'a str,
}

pub fn split_site_path(path: &str) -> Option<SitePath<'_>> {
    let p = path.strip_prefix('/')?;
    if let Some(rest) = p.strip_prefix("mediadb/") {
        return Some(SitePath { site: None, rest });
    }
    let (site, tail) = p.split_once('/')?;
    let rest = tail.strip_prefix("mediadb/")?;
    Some(SitePath { site: Some(site), rest })
}

/// Percent-decodes a path, refusing invalid UTF-8.
pub fn decode_path(raw: &str) -> ApiResult<String> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::bad("the URL path is not valid UTF-8 once decoded"))
}

/// Request parameters in EnterMediaDB's lookup order.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub json: Option<Map<String, Value>>,
}

impl Params {
    pub fn from_query(q: Option<&str>) -> ApiResult<Self> {
        Ok(Params {
            query: parse_urlencoded(q.unwrap_or(""))?,
            ..Default::default()
        })
    }

    /// One parameter as text: a JSON array gives its first element, an object its
    /// JSON text, as EnterMediaDB reads a single parameter.
    pub fn get(&self, name: &str) -> Option<String> {
        self.get_value(name).and_then(|v| match v {
            Value::Array(a) => a.into_iter().next().and_then(|x| scalar(&x)),
            other => scalar(&other),
        })
    }

    /// One parameter as sent: query and form values as strings, JSON values as they are.
    pub fn get_value(&self, name: &str) -> Option<Value> {
        let from_pairs = |pairs: &[(String, String)]| {
            let all: Vec<&String> = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v).collect();
            match all.len() {
                0 => None,
                1 => Some(Value::String(all[0].clone())),
                _ => Some(Value::Array(
                    all.into_iter().map(|v| Value::String(v.clone())).collect(),
                )),
            }
        };
        from_pairs(&self.query)
            .or_else(|| from_pairs(&self.form))
            .or_else(|| self.json.as_ref().and_then(|j| j.get(name).cloned()))
            .filter(|v| !matches!(v, Value::Null) && v.as_str() != Some(""))
    }

    /// Every parameter as one JSON object, later sources overridden by earlier ones
    /// (so `?assetid=1` beats `{"assetid":"2"}`).
    pub fn merged(&self) -> Map<String, Value> {
        let mut out = self.json.clone().unwrap_or_default();
        for pairs in [&self.form, &self.query] {
            let mut seen: Vec<&str> = Vec::new();
            for (k, _) in pairs.iter() {
                if seen.contains(&k.as_str()) {
                    continue;
                }
                seen.push(k);
                let values: Vec<Value> = pairs
                    .iter()
                    .filter(|(kk, _)| kk == k)
                    .map(|(_, v)| Value::String(v.clone()))
                    .collect();
                let v = if values.len() == 1 {
                    values.into_iter().next().unwrap_or(Value::Null)
                } else {
                    Value::Array(values)
                };
                out.insert(k.trim_end_matches("[]").to_string(), v);
            }
        }
        out
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(_) => Some(v.to_string()),
        other => Some(other.to_string()),
    }
}

pub fn parse_urlencoded(s: &str) -> ApiResult<Vec<(String, String)>> {
    Ok(url::form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

/// Reads a whole (non-multipart) body into the parameters. JSON is read leniently from
/// `application/json` and `text/plain`, and from a form body that is plainly JSON
/// (`curl -d '{...}'` sends that content type); a body that cannot be read is a 400.
pub fn read_body(params: &mut Params, headers: &HeaderMap, body: &[u8]) -> ApiResult<()> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let looks_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[');
    let is_form = ctype.starts_with("application/x-www-form-urlencoded");
    if ctype.starts_with("application/json")
        || ctype.starts_with("text/plain")
        || ctype.is_empty()
        || (is_form && looks_json)
    {
        let v = lenient_json::parse(body).map_err(ApiError::BadRequest)?;
        match v {
            Value::Object(m) => params.json = Some(m),
            _ => {
                return Err(ApiError::bad(
                    "the JSON body must be an object, such as {\"assetid\":\"101\"}",
                ))
            }
        }
        return Ok(());
    }
    if is_form {
        let text = std::str::from_utf8(body).map_err(|_| ApiError::bad("the form body is not UTF-8"))?;
        params.form = parse_urlencoded(text)?;
        return Ok(());
    }
    Err(ApiError::bad(format!(
        "unsupported Content-Type \"{ctype}\"; send application/json, text/plain JSON, a form, or multipart/form-data"
    )))
}

/// Where a request's key came from: a cookie counts only for same-origin requests and
/// configured origins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Cookie,
    Parameter,
    Header,
}

/// All cookies of a request as name/value pairs.
pub fn cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(';'))
        .filter_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        })
        .collect()
}

/// The key presented by a request, in EnterMediaDB's order: parameter, the headers
/// (`X-entermedia.key`, or `X-token` with `X-tokentype: entermedia`), then the cookies
/// `entermedia.key{site}` and `entermedia.key`. `X-tokentype: adminkey` is never honoured.
pub fn presented_key(
    params: &Params,
    headers: &HeaderMap,
    site: &str,
    cookie_allowed: bool,
) -> Option<(String, KeySource)> {
    if let Some(k) = params.get("entermedia.key").or_else(|| params.get("entermediakey")) {
        return Some((k, KeySource::Parameter));
    }
    if let Some(k) = headers.get("x-entermedia.key").and_then(|v| v.to_str().ok()) {
        return Some((k.trim().to_string(), KeySource::Header));
    }
    let token_type = headers.get("x-tokentype").and_then(|v| v.to_str().ok());
    if let (Some(t), Some("entermedia")) = (headers.get("x-token").and_then(|v| v.to_str().ok()), token_type) {
        return Some((t.trim().to_string(), KeySource::Header));
    }
    if cookie_allowed {
        let jar = cookies(headers);
        let site_cookie = format!("entermedia.key{site}");
        for name in [site_cookie.as_str(), "entermedia.key"] {
            if let Some((_, v)) = jar.iter().find(|(k, v)| k == name && !v.is_empty()) {
                return Some((v.clone(), KeySource::Cookie));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    #[test]
    fn site_paths() {
        assert_eq!(
            split_site_path("/mediadb/services/x"),
            Some(SitePath {
                site: None,
                rest: "services/x"
            })
        );
        assert_eq!(
            split_site_path("/assets/mediadb/services/x"),
            Some(SitePath {
                site: Some("assets"),
                rest: "services/x"
            })
        );
        assert_eq!(split_site_path("/assets/other/x"), None);
        assert_eq!(split_site_path("/healthz"), None);
    }

    #[test]
    fn lookup_order_query_form_json() {
        let mut p = Params::from_query(Some("assetid=1")).unwrap();
        p.json = Some(
            json!({"assetid":"2","ids":["a","b"],"obj":{"x":1},"n":3})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(p.get("assetid").as_deref(), Some("1"));
        assert_eq!(p.get("ids").as_deref(), Some("a"));
        assert_eq!(p.get("obj").as_deref(), Some("{\"x\":1}"));
        assert_eq!(p.get("n").as_deref(), Some("3"));
        assert_eq!(p.merged()["assetid"], json!("1"));
    }

    #[test]
    fn bodies() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let mut p = Params::default();
        read_body(&mut p, &h, br#"{"assetid": "101",}"#).unwrap();
        assert_eq!(p.get("assetid").as_deref(), Some("101"));
        assert!(read_body(&mut Params::default(), &h, b"{\"assetid\": ").is_err());
        assert!(read_body(&mut Params::default(), &h, b"[1]").is_err());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let mut p = Params::default();
        read_body(&mut p, &h, b"assetid=7&x=%20y").unwrap();
        assert_eq!(p.get("x").as_deref(), Some(" y"));
        let mut p = Params::default();
        read_body(&mut p, &h, br#"{"assetid":"8"}"#).unwrap();
        assert_eq!(p.get("assetid").as_deref(), Some("8"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
        assert!(read_body(&mut Params::default(), &h, b"\x89PNG").is_err());
    }

    #[test]
    fn keys_from_everywhere_but_adminkey() {
        let p = Params::default();
        let mut h = HeaderMap::new();
        h.insert("x-token", HeaderValue::from_static("k1"));
        h.insert("x-tokentype", HeaderValue::from_static("adminkey"));
        h.insert("x-email", HeaderValue::from_static("admin@example.com"));
        assert_eq!(presented_key(&p, &h, "assets", true), None);
        h.insert("x-tokentype", HeaderValue::from_static("entermedia"));
        assert_eq!(
            presented_key(&p, &h, "assets", true),
            Some(("k1".into(), KeySource::Header))
        );
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; entermedia.keyassets=k2"));
        assert_eq!(
            presented_key(&p, &h, "assets", true),
            Some(("k2".into(), KeySource::Cookie))
        );
        assert_eq!(presented_key(&p, &h, "assets", false), None);
        assert_eq!(presented_key(&p, &h, "other", true), None);
    }
}
