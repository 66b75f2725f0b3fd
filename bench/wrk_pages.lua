-- wrk script: GET /v1/calls?size=100&page=N, N cycling over BENCH_PAGES pages, as `each` reads them
local pages = tonumber(os.getenv("BENCH_PAGES")) or 1000
local size = tonumber(os.getenv("BENCH_SIZE")) or 100
local key = os.getenv("BENCH_KEY")
local page = -1
request = function()
  page = (page + 1) % pages
  return wrk.format("GET", "/v1/calls?size=" .. size .. "&page=" .. page,
                    { ["X-API-Key"] = key, ["Accept"] = "application/json" })
end
