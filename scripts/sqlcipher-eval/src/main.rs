//! SQLCipher via sqlx: does `PRAGMA key` work, and what does it cost for the hub's write pattern
//! (WAL, synchronous=FULL, group commits of 512 readings)?
use std::str::FromStr;
use std::time::Instant;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

#[tokio::main]
async fn main() {
    let dir = std::env::args().nth(1).unwrap_or("target/eval-db".into());
    std::fs::create_dir_all(&dir).unwrap();
    let path = format!("{dir}/h.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let mut opts = SqliteConnectOptions::from_str("sqlite:")
        .unwrap()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let keyed = cfg!(feature = "cipher");
    if keyed {
        // Must be the first statement on every connection.
        opts = opts.pragma(
            "key",
            "'x''0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'''",
        );
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap();
    let v: (String,) = sqlx::query_as("select sqlite_version()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let cipher: Option<(String,)> = sqlx::query_as("pragma cipher_version")
        .fetch_optional(&pool)
        .await
        .unwrap();
    println!("sqlite {} cipher {:?}", v.0, cipher.map(|c| c.0));
    sqlx::query("create table readings(id integer primary key, device text, seq integer, at integer, obs text)")
        .execute(&pool).await.unwrap();
    let batches = 400;
    let per = 512;
    let t = Instant::now();
    for b in 0..batches {
        let mut tx = pool.begin().await.unwrap();
        for i in 0..per {
            sqlx::query("insert into readings(device, seq, at, obs) values (?, ?, ?, ?)")
                .bind(format!("dev-{}", i % 50))
                .bind((b * per + i) as i64)
                .bind(1_800_000_000_000i64 + i as i64)
                .bind(r#"[{"code":"spo2","value":97},{"code":"pulse","value":72}]"#)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let w = t.elapsed();
    let t = Instant::now();
    let mut small = 0;
    for b in 0..200 {
        sqlx::query("insert into readings(device, seq, at, obs) values ('dev-x', ?, 0, '[]')")
            .bind(10_000_000 + b as i64)
            .execute(&pool)
            .await
            .unwrap();
        small += 1;
    }
    let s = t.elapsed();
    let t = Instant::now();
    let n: (i64,) = sqlx::query_as("select count(*) from readings where device = 'dev-7'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let q = t.elapsed();
    pool.close().await;
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "keyed={keyed} rows={} batch_insert={:.0} rows/s single_commit={:.2} ms each scan={:.1} ms ({} rows) file={} KB",
        batches * per,
        (batches * per) as f64 / w.as_secs_f64(),
        s.as_secs_f64() * 1000.0 / small as f64,
        q.as_secs_f64() * 1000.0,
        n.0,
        size / 1024
    );
    let head = std::fs::read(&path).unwrap();
    println!(
        "file header plaintext 'SQLite format 3': {}",
        head.starts_with(b"SQLite format 3")
    );
}
