-- wrk script: the writes of wrk_mabeam.lua (loaded from this script's
-- directory, not copied), and at the end one line
-- "PCT p50=.. p90=.. p95=.. p97=.. p98=.. p99=.. p99.5=.. p99.9=.. max=.."
-- (milliseconds) for tests/bench/cluster/sustained.sh.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_mabeam.lua")
done = function(summary, latency, requests)
    local out = {}
    for _, p in ipairs({ 50, 90, 95, 97, 98, 99, 99.5, 99.9 }) do
        out[#out + 1] = string.format("p%s=%.1f", p, latency:percentile(p) / 1000)
    end
    out[#out + 1] = string.format("max=%.1f", latency.max / 1000)
    io.write("PCT " .. table.concat(out, " ") .. "\n")
end
