-- Row 7: every Nth request (BENCH_WRITE_EVERY, default 10) goes to <prefix>/write, whose
-- backend answers with a write-back; the others to <prefix>/. Requests rotate over the
-- session cookies listed one per line in BENCH_COOKIE_FILE ("name=value"), so writes
-- spread over many sessions instead of all contending for one.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local cookies = {}
local file = os.getenv("BENCH_COOKIE_FILE")
if file then
  for line in io.lines(file) do
    if #line > 0 then cookies[#cookies + 1] = line end
  end
end
local every = tonumber(os.getenv("BENCH_WRITE_EVERY") or "10")
local prefix = os.getenv("BENCH_PATH_PREFIX") or "/app"
local plain, write = prefix .. "/", prefix .. "/write"
local n = 0

request = function()
  n = n + 1
  local headers = {}
  if #cookies > 0 then headers["Cookie"] = cookies[(n % #cookies) + 1] end
  return wrk.format("GET", (n % every == 0) and write or plain, headers)
end
