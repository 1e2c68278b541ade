//! The walker on real trees: links, loops, FIFOs, sockets, hidden
//! entries, and generated trees of all of them.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use turncoat_walk::{Input, WalkOptions, walk};

fn write(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, path.to_string_lossy().as_bytes()).unwrap();
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

fn files(inputs: &[Input]) -> Vec<PathBuf> {
    inputs
        .iter()
        .map(|i| match i {
            Input::File(p) => p.clone(),
            Input::Stream(p) => panic!("unexpected stream {}", p.display()),
        })
        .collect()
}

#[test]
fn hidden_entries_and_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("rules/a.yml"));
    write(&root.join("rules/b.YAML"));
    write(&root.join("rules/readme.md"));
    write(&root.join(".github/workflows/ci.yml"));
    write(&root.join("rules/.hidden.yml"));
    let named = root.join("rules/readme.md");
    let w = walk(
        &[root.to_owned(), named.clone()],
        &WalkOptions::with_extensions(&["yml", "yaml"]),
    );
    assert_eq!(
        files(&w.inputs),
        [root.join("rules/a.yml"), root.join("rules/b.YAML"), named],
        "a named file is read whatever its extension; .github is hidden"
    );
    assert!(w.skipped.is_empty(), "{:?}", w.skipped);
}

#[test]
fn links_to_a_parent_end_as_reported_loops() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    write(&root.join("a/x.log"));
    write(&root.join("a/b/y.log"));
    symlink("..", root.join("a/b/up")).unwrap();
    symlink("../..", root.join("a/b/top")).unwrap();
    symlink(&root, root.join("a/self")).unwrap();
    let started = Instant::now();
    let w = walk(std::slice::from_ref(&root), &WalkOptions::all_files());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        files(&w.inputs),
        [root.join("a/b/y.log"), root.join("a/x.log")]
    );
    assert_eq!(w.skipped.len(), 3, "{:?}", w.skipped);
    assert!(w.skipped.iter().all(|s| s.reason.contains("link loop")));
}

#[test]
fn links_out_of_the_tree_are_followed_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    write(&root.join("in.log"));
    write(&dir.path().join("outside/secret.log"));
    symlink(dir.path().join("outside"), root.join("out")).unwrap();
    symlink(root.join("in.log"), root.join("again.log")).unwrap();
    let w = walk(std::slice::from_ref(&root), &WalkOptions::all_files());
    assert_eq!(
        files(&w.inputs),
        [root.join("again.log")],
        "one read of in.log"
    );
    assert_eq!(w.skipped.len(), 1);
    assert!(w.skipped[0].reason.contains("out of the tree"));
    let w = walk(
        std::slice::from_ref(&root),
        &WalkOptions {
            follow_links: true,
            ..WalkOptions::all_files()
        },
    );
    assert_eq!(
        files(&w.inputs),
        [root.join("again.log"), root.join("out/secret.log")]
    );
}

#[test]
fn fifos_sockets_and_broken_links_inside_a_tree_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("ok.log"));
    mkfifo(&root.join("pipe.log"));
    let _socket = std::os::unix::net::UnixListener::bind(root.join("sock.log")).unwrap();
    symlink(root.join("missing"), root.join("broken.log")).unwrap();
    let w = walk(&[root.to_owned()], &WalkOptions::all_files());
    assert_eq!(files(&w.inputs), [root.join("ok.log")]);
    let reasons: Vec<&str> = w.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("broken link"));
    assert!(reasons[1].contains("FIFO"));
    assert!(reasons[2].contains("socket"));
    // Named on its own, a FIFO is a stream; so is `-`.
    let w = walk(
        &[root.join("pipe.log"), PathBuf::from("-")],
        &WalkOptions::all_files(),
    );
    assert_eq!(
        w.inputs,
        [
            Input::Stream(root.join("pipe.log")),
            Input::Stream(PathBuf::from("-"))
        ]
    );
}

#[test]
fn the_file_limit_stops_the_walk_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..10 {
        write(&dir.path().join(format!("{i}.log")));
    }
    let w = walk(
        &[dir.path().to_owned()],
        &WalkOptions {
            max_files: 4,
            ..WalkOptions::all_files()
        },
    );
    assert_eq!(w.inputs.len(), 4);
    assert_eq!(w.skipped.len(), 1);
    assert!(w.skipped[0].reason.contains("stopped at 4 files"));
}

/// Generated trees of directories, files, FIFOs and links to anything
/// (parents, siblings, files, outside, nowhere): every walk ends, lists
/// each regular file of the tree exactly once and nothing else.
#[test]
fn generated_trees_with_links_loops_and_fifos() {
    for seed in 1..=60u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        write(&outside.join("o.log"));
        let mut dirs = vec![root.clone()];
        fs::create_dir_all(&root).unwrap();
        let mut regular = HashSet::new();
        let mut targets = vec![
            outside.clone(),
            outside.join("o.log"),
            dir.path().join("nowhere"),
        ];
        for n in 0..40 {
            let parent = dirs[rng.usize(..dirs.len())].clone();
            let path = parent.join(format!("e{n}"));
            match rng.usize(..5) {
                0 => {
                    fs::create_dir(&path).unwrap();
                    dirs.push(path.clone());
                    targets.push(path);
                }
                1 | 2 => {
                    write(&path);
                    regular.insert(fs::canonicalize(&path).unwrap());
                    targets.push(path);
                }
                3 => mkfifo(&path),
                _ => {
                    let target = if rng.usize(..2) == 0 {
                        dirs[rng.usize(..dirs.len())].clone()
                    } else {
                        targets[rng.usize(..targets.len())].clone()
                    };
                    symlink(target, &path).unwrap();
                }
            }
        }
        let started = Instant::now();
        let w = walk(std::slice::from_ref(&root), &WalkOptions::all_files());
        assert!(started.elapsed() < Duration::from_secs(5), "seed {seed}");
        let listed: Vec<PathBuf> = files(&w.inputs)
            .iter()
            .map(|p| fs::canonicalize(p).unwrap())
            .collect();
        let unique: HashSet<PathBuf> = listed.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            listed.len(),
            "seed {seed}: a file listed twice"
        );
        assert_eq!(unique, regular, "seed {seed}: {:?}", w.skipped);
    }
}
