-- wrk script: POST /v1/calls with the benchmark's request body (BENCH_BODY) and key (BENCH_KEY).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("BENCH_KEY")
