//! `waypost dev` run as a user would: it serves a new app, notices an edit to a route, rebuilds
//! and restarts it, and its address answers every request throughout — none is refused. A
//! request the replaced build still holds is cut once its drain time is over, so old builds
//! cannot pile up behind open streams. Builds are asked to stop with SIGTERM first, so they shut
//! down as they do in production.

use std::{
    fs,
    io::{self, BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

/// Shared with `new_command.rs`, so only the first scaffold build is a full one.
fn scaffold_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the tmp dir is inside the target dir")
        .join("scaffold-target")
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What one request got.
#[derive(Debug)]
enum Outcome {
    /// The status and the body's `message`, if it had one.
    Answer(u16, Option<String>),
    Refused,
    Failed(String),
}

/// `GET path` on a fresh connection — a plain HTTP/1.1 exchange, so that a refused connection
/// is told apart from every other failure.
fn get(port: u16, path: &str) -> Outcome {
    let mut stream = match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
        Ok(stream) => stream,
        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => return Outcome::Refused,
        Err(error) => return Outcome::Failed(format!("connect: {error}")),
    };
    let mut exchange = || -> io::Result<String> {
        // Longer than dev lets a request wait for a build.
        stream.set_read_timeout(Some(Duration::from_secs(90)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    };
    let response = match exchange() {
        Ok(response) => response,
        Err(error) => return Outcome::Failed(format!("exchange: {error}")),
    };
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return Outcome::Failed(format!("no header end in {response:?}"));
    };
    let Some(status) = head.split(' ').nth(1).and_then(|s| s.parse().ok()) else {
        return Outcome::Failed(format!("no status in {head:?}"));
    };
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|json| json["message"].as_str().map(str::to_owned));
    Outcome::Answer(status, message)
}

/// Polls until `GET /api/hello` answers 200 with `message`, or panics after `within`.
fn wait_for_message(port: u16, message: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if let Outcome::Answer(200, Some(answer)) = get(port, "/api/hello") {
            if answer == message {
                return started.elapsed();
            }
        }
        assert!(
            started.elapsed() < within,
            "no {message:?} from /api/hello within {within:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// What the background requests got while the app was rebuilt.
#[derive(Debug, Default)]
struct Tally {
    old: usize,
    new: usize,
    refused: usize,
    other: Vec<String>,
}

/// `waypost dev` in its own process group, which is killed whole if the test fails midway.
struct Dev {
    child: Child,
    /// Every line dev and the apps it runs have written so far.
    output: Arc<Mutex<Vec<String>>>,
}

impl Dev {
    fn start(app: &Path, port: u16) -> Dev {
        let mut child = Command::new(env!("CARGO_BIN_EXE_waypost"))
            .arg("dev")
            .arg(app)
            .args(["--port", &port.to_string()])
            .args(["--drain", &DRAIN.as_secs().to_string()])
            .env("CARGO_TARGET_DIR", scaffold_target())
            // The requests below all come from one address, faster than the default limit.
            .env("RATE_LIMIT_DEFAULT", "off")
            // The apps' own account of their shutdowns.
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("the waypost binary runs");
        // Through eprintln!, so the test harness shows dev's output when the test fails.
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let output = output.clone();
            thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("dev | {line}");
                    output.lock().unwrap().push(line);
                }
            });
        }
        Dev { child, output }
    }

    /// How many lines written so far contain `text`.
    fn lines_with(&self, text: &str) -> usize {
        let output = self.output.lock().unwrap();
        output.iter().filter(|line| line.contains(text)).count()
    }

    fn signal(&self, signal: &str, target: &str) -> bool {
        Command::new("kill")
            .args([signal, "--", target])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Whether any process of dev's group (dev, cargo, the app) is still alive.
    fn group_alive(&self) -> bool {
        self.signal("-0", &format!("-{}", self.child.id()))
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        self.signal("-KILL", &format!("-{}", self.child.id()));
        let _ = self.child.wait();
    }
}

/// What a Waypost app logs when SIGTERM starts its graceful shutdown, and when it has closed
/// every connection in time.
const SHUTTING_DOWN: &str = "shutting down: waiting for in-flight requests";
const ALL_CLOSED: &str = "all connections closed";

/// How long a replaced build keeps the requests it still has (`--drain`).
const DRAIN: Duration = Duration::from_secs(2);

/// A route that answers only after a long time: a request the replaced build still holds.
const SLOW_ROUTE: &str = r#"//! Answers after a long wait.

/// Waits two minutes, then answers.
pub async fn get() -> &'static str {
    tokio::time::sleep(std::time::Duration::from_secs(120)).await;
    "late"
}
"#;

#[test]
fn an_edited_route_is_served_after_a_rebuild_and_no_request_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("demo");
    let created = Command::new(env!("CARGO_BIN_EXE_waypost"))
        .args(["new", "demo", "--path", app.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    fs::create_dir_all(app.join("src/app/api/slow")).unwrap();
    fs::write(app.join("src/app/api/slow/route.rs"), SLOW_ROUTE).unwrap();
    let port = free_port();
    let mut dev = Dev::start(&app, port);

    // The first build compiles everything when the shared target dir is cold.
    wait_for_message(port, "Hello", Duration::from_secs(30 * 60));
    // Held by the first build across the switch.
    let slow = thread::spawn(move || {
        let outcome = get(port, "/api/slow");
        (outcome, Instant::now())
    });

    let stop = Arc::new(AtomicBool::new(false));
    let requests = thread::spawn({
        let stop = stop.clone();
        move || {
            let mut tally = Tally::default();
            while !stop.load(Ordering::Relaxed) {
                match get(port, "/api/hello") {
                    Outcome::Answer(200, Some(message)) if message == "Hello" => tally.old += 1,
                    Outcome::Answer(200, Some(message)) if message == "Hello again" => {
                        tally.new += 1;
                    }
                    Outcome::Refused => tally.refused += 1,
                    Outcome::Failed(why) => tally.other.push(why),
                    other => tally.other.push(format!("{other:?}")),
                }
                thread::sleep(Duration::from_millis(20));
            }
            tally
        }
    });

    let route = app.join("src/app/api/hello/route.rs");
    let source = fs::read_to_string(&route).unwrap();
    let edited = source.replace(r#""message": "Hello""#, r#""message": "Hello again""#);
    assert_ne!(source, edited, "the scaffold's hello route changed shape");
    fs::write(&route, edited).unwrap();
    let took = wait_for_message(port, "Hello again", Duration::from_secs(240));
    let switched = Instant::now();
    eprintln!(
        "waypost dev: edit of src/app/api/hello/route.rs to the new answer: {:.1}s",
        took.as_secs_f64()
    );

    // A little longer, so requests also reach the new build after the switch.
    thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let tally = requests.join().unwrap();
    eprintln!("background requests during the rebuild: {tally:?}");
    assert_eq!(tally.refused, 0, "{tally:?}");
    assert!(tally.other.is_empty(), "{tally:?}");
    assert!(tally.old > 0 && tally.new > 0, "{tally:?}");

    // The slow request was still on the replaced build: it is cut once the drain time is over
    // (its answer was two minutes away), so that build is gone.
    let (outcome, ended) = slow.join().unwrap();
    eprintln!("the request the replaced build held: {outcome:?}");
    // The proxy answers for the build it lost: 502, not a timeout and not the late answer.
    assert!(matches!(outcome, Outcome::Answer(502, _)), "{outcome:?}");
    // Neither at once (the drain is kept) nor long after it.
    let cut_after = ended.saturating_duration_since(switched);
    assert!(
        cut_after + Duration::from_secs(1) >= DRAIN && cut_after < DRAIN + Duration::from_secs(20),
        "cut {cut_after:?} after the switch"
    );
    // It was asked first: the replaced build began its own graceful shutdown (and, its slow
    // request still open past the grace, was then killed).
    assert_eq!(dev.lines_with(SHUTTING_DOWN), 1);
    assert_eq!(dev.lines_with(ALL_CLOSED), 0);

    // SIGTERM ends dev, and dev ends the app it started: the whole group is gone.
    assert!(dev.signal("-TERM", &dev.child.id().to_string()));
    let status = dev.child.wait().unwrap();
    assert!(status.success(), "dev exited with {status}");
    // The current build, with nothing in flight, shut down gracefully and whole (its last
    // lines may still be on their way through the pipe).
    let deadline = Instant::now() + Duration::from_secs(5);
    while dev.lines_with(ALL_CLOSED) == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(dev.lines_with(SHUTTING_DOWN), 2);
    assert_eq!(dev.lines_with(ALL_CLOSED), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while dev.group_alive() {
        assert!(
            Instant::now() < deadline,
            "the app outlived waypost dev by 10 s"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert!(matches!(get(port, "/api/hello"), Outcome::Refused));
}
