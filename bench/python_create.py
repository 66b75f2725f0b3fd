# bench child: N sequential creates with requests.Session (keep-alive), json= body, r.json()
# decoding. With an https BENCH_URL, the same over TLS, verifying the server with verify=BENCH_CA.
import json, os, sys, time
import requests
n = int(sys.argv[1])
base = os.environ.get("BENCH_URL") or os.environ["SIGMAMIND_BASE_URL"]
url = base + "/v1/calls"
params = json.loads(os.environ["BENCH_BODY"])
s = requests.Session()
s.headers.update({"X-API-Key": os.environ["SIGMAMIND_API_KEY"], "Accept": "application/json"})
# per request: a Session's own verify loses to REQUESTS_CA_BUNDLE from the environment
verify = os.environ["BENCH_CA"] if base.startswith("https:") else True
def create():
    r = s.post(url, json=params, verify=verify)
    return r.json() if r.status_code == 201 else None
assert create()
errors = 0
c0, t0 = time.process_time(), time.monotonic()
for _ in range(n - 1):
    call = create()
    if not (call and call.get("callId")):
        errors += 1
print("count=%d elapsed=%.6f cpu=%.6f errors=%d" % (n - 1, time.monotonic() - t0, time.process_time() - c0, errors))
