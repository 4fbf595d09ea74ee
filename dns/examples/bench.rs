//! `cargo run -p dns --release --example bench [services] [endpoints] [queries]`: answers/s and index size.

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().ok());
    let services = args.next().flatten().unwrap_or(10_000);
    let endpoints = args.next().flatten().unwrap_or(50_000);
    let queries = args.next().flatten().unwrap_or(1_000_000);
    let (qps, bytes) = dns::bench::bench_answers(services, endpoints, queries);
    println!(
        "{services} services, {endpoints} endpoints: {qps:.0} answers/s, index ≈ {} KiB",
        bytes / 1024
    );
}
