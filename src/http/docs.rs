//! `GET /docs`: the HTTP contract (`openapi.yaml`) as one readable HTML page, rendered by the
//! server itself once: every operation by tag with its summary, description, parameters and
//! responses. Nothing is fetched from elsewhere: no script, no font, no stylesheet but its own
//! (and the Content-Security-Policy says so).

use std::fmt::Write;
use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde_yaml::Value;

use super::health::openapi_doc;

const METHODS: [&str; 7] = ["get", "head", "post", "put", "patch", "delete", "options"];

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:72rem;margin:2rem auto;\
padding:0 1rem;color:#1b1f24}h1{margin-bottom:.2rem}h2{margin-top:2.5rem;border-bottom:1px solid \
#d0d7de}h3{margin:1.6rem 0 .3rem;font-size:1.05rem}code{background:#f3f4f6;padding:0 .25rem;\
border-radius:3px}.m{display:inline-block;min-width:4.2rem;font-weight:600}.d{white-space:pre-wrap}\
table{border-collapse:collapse;margin:.4rem 0}td,th{border:1px solid #d0d7de;padding:.2rem .5rem;\
text-align:left;vertical-align:top}nav a{margin-right:.8rem}";

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// A `$ref`'d component resolved against the document (one level), else the value itself.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str().and_then(|r| r.strip_prefix("#/")) {
        Some(path) => path.split('/').fold(doc, |node, key| &node[key]),
        None => v,
    }
}

/// The page, rendered from an OpenAPI document.
pub fn render(doc: &Value) -> String {
    let title = text(&doc["info"]["title"]);
    let version = text(&doc["info"]["version"]);
    let mut tags: Vec<(String, String)> = doc["tags"]
        .as_sequence()
        .map(|t| {
            t.iter()
                .map(|t| {
                    (
                        text(&t["name"]).to_string(),
                        text(&t["description"]).to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    // Operations by tag, in the document's order.
    let mut ops: Vec<(String, String, String, &Value)> = Vec::new();
    if let Some(paths) = doc["paths"].as_mapping() {
        for (path, item) in paths {
            for m in METHODS {
                let op = &item[m];
                if op.is_mapping() {
                    let tag = op["tags"][0].as_str().unwrap_or("other").to_string();
                    if !tags.iter().any(|(t, _)| *t == tag) {
                        tags.push((tag.clone(), String::new()));
                    }
                    ops.push((tag, m.to_ascii_uppercase(), text(path).to_string(), op));
                }
            }
        }
    }
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width,initial-scale=1\"><title>{} {}</title><style>{STYLE}</style>\
         </head><body><h1>{} <small>{}</small></h1><p>The machine-readable contracts: <a \
         href=\"/openapi.yaml\">openapi.yaml</a> (HTTP) and <a href=\"/openapi-wss.yaml\">\
         openapi-wss.yaml</a> (WebSocket).</p><nav>",
        esc(title),
        esc(version),
        esc(title),
        esc(version)
    );
    for (tag, _) in &tags {
        let _ = write!(h, "<a href=\"#tag-{0}\">{0}</a>", esc(tag));
    }
    h.push_str("</nav>");
    let intro = text(&doc["info"]["description"]);
    if !intro.is_empty() {
        let _ = write!(h, "<p class=\"d\">{}</p>", esc(intro));
    }
    for (tag, about) in &tags {
        let _ = write!(h, "<h2 id=\"tag-{0}\">{0}</h2>", esc(tag));
        if !about.is_empty() {
            let _ = write!(h, "<p>{}</p>", esc(about));
        }
        for (_, method, path, op) in ops.iter().filter(|(t, ..)| t == tag) {
            let id = text(&op["operationId"]);
            let _ = write!(
                h,
                "<h3 id=\"{}\"><span class=\"m\">{}</span><code>{}</code> {}</h3>",
                esc(id),
                method,
                esc(path),
                esc(text(&op["summary"]))
            );
            let description = text(&op["description"]);
            if !description.is_empty() {
                let _ = write!(h, "<p class=\"d\">{}</p>", esc(description.trim_end()));
            }
            if let Some(params) = op["parameters"].as_sequence() {
                h.push_str("<table><tr><th>parameter</th><th>in</th><th>description</th></tr>");
                for p in params {
                    let p = resolve(doc, p);
                    let _ = write!(
                        h,
                        "<tr><td><code>{}</code>{}</td><td>{}</td><td class=\"d\">{}</td></tr>",
                        esc(text(&p["name"])),
                        if p["required"].as_bool() == Some(true) {
                            " (required)"
                        } else {
                            ""
                        },
                        esc(text(&p["in"])),
                        esc(text(&p["description"]))
                    );
                }
                h.push_str("</table>");
            }
            if let Some(responses) = op["responses"].as_mapping() {
                h.push_str("<table><tr><th>status</th><th>answer</th></tr>");
                for (status, r) in responses {
                    let status = status
                        .as_str()
                        .map(str::to_string)
                        .or_else(|| status.as_u64().map(|n| n.to_string()))
                        .unwrap_or_default();
                    let _ = write!(
                        h,
                        "<tr><td>{}</td><td class=\"d\">{}</td></tr>",
                        esc(&status),
                        esc(text(&resolve(doc, r)["description"]))
                    );
                }
                h.push_str("</table>");
            }
        }
    }
    h.push_str("</body></html>");
    h
}

pub async fn docs() -> HttpResponse {
    static PAGE: OnceLock<String> = OnceLock::new();
    let page = PAGE.get_or_init(|| render(openapi_doc()));
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ))
        .body(page.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_on_the_page_and_text_is_escaped() {
        let doc = openapi_doc();
        let page = render(doc);
        for (path, _) in doc["paths"].as_mapping().unwrap() {
            assert!(
                page.contains(&format!("<code>{}</code>", esc(text(path)))),
                "{path:?} missing"
            );
        }
        // Nothing the browser would fetch from elsewhere.
        for fetches in ["<script", "<link", " src=", "@import", "url("] {
            assert!(!page.contains(fetches), "{fetches}");
        }
        let tiny = "openapi: 3.1.0\ninfo: {title: T, version: '1'}\npaths:\n  /x:\n    get:\n      summary: \"<b>bold</b> & more\"\n      responses: {'200': {description: ok}}\n";
        let page = render(&serde_yaml::from_str(tiny).unwrap());
        assert!(
            page.contains("&lt;b&gt;bold&lt;/b&gt; &amp; more"),
            "{page}"
        );
        assert!(!page.contains("<b>bold"));
    }
}
