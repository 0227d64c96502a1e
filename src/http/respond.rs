//! Success envelopes. Rows rendered by the database are spliced in as bytes; they are parsed only
//! when a transform (strip nulls) is asked for.

use actix_web::HttpResponse;
use athena_actors::ops::OpOutput;
use serde_json::Value;

use super::error::{ApiError, Code};

pub fn json(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        "row"
    } else {
        "rows"
    }
}

/// Removes null-valued fields from every row object.
pub fn strip_nulls(rows_json: &str) -> Result<String, ApiError> {
    let mut rows: Value = serde_json::from_str(rows_json)
        .map_err(|e| ApiError::new(Code::Internal, format!("rows were not JSON: {e}")))?;
    if let Value::Array(items) = &mut rows {
        strip_rows(items);
    }
    Ok(rows.to_string())
}

/// Removes null-valued fields from each object of `rows`.
fn strip_rows(rows: &mut [Value]) {
    for row in rows {
        if let Value::Object(m) = row {
            m.retain(|_, v| !v.is_null());
        }
    }
}

/// The body of [`rows`] with `data.post_processing`: the rows grouped and aggregated by `spec`.
/// Groups are computed from the rows as the database returned them; `strip` then drops null
/// fields from the rows, in `data.rows` and in every group alike.
pub fn processed_body(
    verb: &str,
    out: &OpOutput,
    strip: bool,
    spec: &crate::post::PostSpec,
) -> Result<String, ApiError> {
    let mut rows: Vec<Value> = serde_json::from_str(&out.rows_json)
        .map_err(|e| ApiError::new(Code::Internal, format!("rows were not JSON: {e}")))?;
    let mut post = crate::post::apply(spec, &rows)?;
    if strip {
        strip_rows(&mut rows);
        if let Some(groups) = post.get_mut("grouped").and_then(Value::as_array_mut) {
            for g in groups {
                if let Some(Value::Array(rows)) = g.get_mut("rows") {
                    strip_rows(rows);
                }
            }
        }
    }
    let shaped = OpOutput {
        rows_json: Value::Array(rows).to_string(),
        ..out.clone()
    };
    rows_body(verb, &shaped, false, &[("post_processing", post)])
}

/// `{"status":"success","message":"<verb> N rows","data":{"rows":[…],"count":N?,…extra}}`.
pub fn rows(
    verb: &str,
    out: &OpOutput,
    strip: bool,
    extra: &[(&str, Value)],
) -> Result<HttpResponse, ApiError> {
    Ok(json(rows_body(verb, out, strip, extra)?))
}

/// The body of [`rows`].
pub fn rows_body(
    verb: &str,
    out: &OpOutput,
    strip: bool,
    extra: &[(&str, Value)],
) -> Result<String, ApiError> {
    let rows = if strip {
        strip_nulls(&out.rows_json)?
    } else {
        out.rows_json.clone()
    };
    let mut body = String::with_capacity(rows.len() + 96);
    body.push_str("{\"status\":\"success\",\"message\":\"");
    body.push_str(&format!(
        "{verb} {} {}",
        out.row_count,
        plural(out.row_count)
    ));
    body.push_str("\",\"data\":{\"rows\":");
    body.push_str(&rows);
    if let Some(total) = out.total {
        body.push_str(&format!(",\"count\":{total}"));
    }
    if let Some(next) = &out.next_page {
        body.push_str(",\"next_page\":");
        body.push_str(&Value::String(next.clone()).to_string());
    }
    for (k, v) in extra {
        body.push_str(&format!(",{}:{}", Value::String((*k).into()), v));
    }
    body.push_str("}}");
    Ok(body)
}

/// An envelope around arbitrary data.
pub fn data(message: &str, data: Value) -> HttpResponse {
    json(serde_json::json!({"status": "success", "message": message, "data": data}).to_string())
}

/// An envelope around arbitrary data, answered with 201 Created.
pub fn created(message: &str, data: Value) -> HttpResponse {
    HttpResponse::Created()
        .content_type("application/json")
        .body(
            serde_json::json!({"status": "success", "message": message, "data": data}).to_string(),
        )
}

/// `"1 client"`, `"3 clients"`: a count for an envelope's message.
pub fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_carries_the_next_page_cursor_when_there_is_one() {
        let out = OpOutput {
            rows_json: "[{\"a\":1}]".into(),
            row_count: 1,
            next_page: Some("AQID_-".into()),
            ..OpOutput::default()
        };
        let body: Value =
            serde_json::from_str(&rows_body("Fetched", &out, false, &[]).unwrap()).unwrap();
        assert_eq!(body["data"]["next_page"], "AQID_-");
        assert_eq!(body["data"]["rows"][0]["a"], 1);
        let none = OpOutput {
            next_page: None,
            ..out
        };
        let body: Value =
            serde_json::from_str(&rows_body("Fetched", &none, false, &[]).unwrap()).unwrap();
        assert!(body["data"].get("next_page").is_none());
    }
}
