//! A local S3-compatible server for the backup tests: moto's server (`moto_server`, moto
//! 5.0.28 in a virtualenv of its own that scripts/test.sh creates), one per test on a free port,
//! stopped when dropped. It keeps everything in memory, supports multipart uploads, ListObjectsV2
//! pagination and user metadata. (Later moto releases answer CompleteMultipartUpload with a
//! `CompleteMultipartUploadResponse` root element, which S3 never sends and the AWS SDK refuses.)

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use athena_actors::backup::{s3, S3Spec, Store};

/// The moto release the tests run.
pub const MOTO_VERSION: &str = "5.0.28";

/// `$ATHENA_TEST_MOTO_SERVER`, else the virtualenv scripts/test.sh creates.
fn moto_server() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("ATHENA_TEST_MOTO_SERVER") {
        return p.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))
        .unwrap_or_else(|| "/tmp".into());
    cache
        .join("athena")
        .join(format!("moto-{MOTO_VERSION}"))
        .join("bin")
        .join("moto_server")
}

pub struct S3Server {
    pub endpoint: String,
    child: Child,
}

impl S3Server {
    pub async fn start() -> S3Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let program = moto_server();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "the local S3 server {} cannot start ({e}); scripts/test.sh installs it \
                     (python3 -m venv <dir> && <dir>/bin/pip install 'moto[server]=={MOTO_VERSION}', \
                     or point ATHENA_TEST_MOTO_SERVER at a moto_server)",
                    program.display()
                )
            });
        let mut srv = S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = srv.child.try_wait().expect("moto's status") {
                panic!("the local S3 server (moto) exited with {status}; run scripts/test.sh");
            }
            if reqwest::get(format!("{}/moto-api/", srv.endpoint))
                .await
                .is_ok()
            {
                return srv;
            }
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn spec(&self, bucket: &str) -> S3Spec {
        S3Spec {
            bucket: bucket.to_string(),
            region: "us-east-1".into(),
            prefix: "backups".into(),
            credentials: Some(("test".into(), "test".into(), None)),
            endpoint: Some(self.endpoint.clone()),
            path_style: true,
            ca_pem: None,
        }
    }

    /// A client of the bucket, for what the tests do behind the server's back.
    pub fn client(&self, bucket: &str) -> s3::Client {
        Store::new(&self.spec(bucket)).client().clone()
    }

    /// The bytes of an object, read behind the server's back.
    pub async fn object(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.client(bucket)
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
            .to_vec()
    }

    /// Creates a bucket with a unique name.
    pub async fn bucket(&self) -> String {
        let name = super::unique_name("athena-b").replace('_', "-");
        self.client(&name)
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("bucket created");
        name
    }

    /// The `backups:` config section for this server and bucket.
    pub fn config(&self, bucket: &str) -> String {
        format!(
            "backups:\n  bucket: {bucket}\n  endpoint: {}\n  access_key: test\n  secret_key: test\n  prefix: backups\n  part_size_mib: 5\n",
            self.endpoint
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a backup and waits for its job to end; returns the final job report.
pub async fn backup(srv: &super::TestServer, body: serde_json::Value) -> serde_json::Value {
    let (s, v) = super::admin(srv, reqwest::Method::POST, "/admin/backups", Some(body)).await;
    assert_eq!(s, reqwest::StatusCode::ACCEPTED, "{v}");
    let id = v["data"]["job_id"].as_str().unwrap().to_string();
    assert_eq!(v["data"]["job"]["state"], "running", "{v}");
    wait_job(srv, &id).await
}

/// Waits until backup job `id` of `srv` has ended; its final report.
pub async fn wait_job(srv: &super::TestServer, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (s, v) = super::admin(
            srv,
            reqwest::Method::GET,
            &format!("/admin/backups/jobs/{id}"),
            None,
        )
        .await;
        assert_eq!(s, reqwest::StatusCode::OK, "{v}");
        if v["data"]["job"]["state"] != "running" {
            return v["data"]["job"].clone();
        }
        assert!(Instant::now() < deadline, "job {id} did not finish: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
