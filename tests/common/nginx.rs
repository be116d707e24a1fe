//! nginx with its RTMP module as a peer: started on an ephemeral loopback
//! port with a generated config, killed by PID when dropped. Fails loudly
//! when nginx or the module is missing.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

pub struct Nginx {
    pub addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

impl Nginx {
    /// nginx-rtmp with one `live` application.
    pub fn start() -> Nginx {
        assert!(
            std::path::Path::new(MODULE).exists(),
            "nginx RTMP module missing: apt-get install nginx libnginx-mod-rtmp"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let dir =
            std::env::temp_dir().join(format!("ringcast-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "load_module {MODULE};\ndaemon off;\nmaster_process off;\nworker_processes 1;\n\
                 error_log stderr warn;\npid {pid};\nevents {{ worker_connections 256; }}\n\
                 rtmp {{ server {{ listen {addr}; chunk_size 4096; application live {{ live on; }} }} }}\n",
                pid = dir.join("nginx.pid").display()
            ),
        )
        .expect("write nginx.conf");
        let child = Command::new("nginx")
            .args([
                "-c",
                &conf.display().to_string(),
                "-p",
                &dir.display().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx not found: apt-get install nginx libnginx-mod-rtmp");
        let mut nginx = Nginx { addr, child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited at startup: {status}");
            }
            assert!(Instant::now() < deadline, "nginx never listened on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    pub fn url(&self) -> String {
        format!("rtmp://{}/live", self.addr)
    }

    /// Kills nginx now (as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
