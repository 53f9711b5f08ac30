-- Fluent Bit Lua filter: the gateway writes a stack trace on one line, in the "traceback" field,
-- with each line break replaced by " | ". Put the line breaks back so OpenObserve and Grafana show
-- the trace as it was. Records without a traceback pass through untouched.
--
-- Fluent Bit calls cb(tag, timestamp, record) and expects (code, timestamp, record):
--   code 0 = keep the record unchanged, 2 = record modified, keep the original timestamp.

local SEPARATOR = " | "

function restore_traceback_newlines(tag, timestamp, record)
    local tb = record["traceback"]
    if type(tb) ~= "string" or not string.find(tb, SEPARATOR, 1, true) then
        return 0, timestamp, record
    end
    local parts = {}
    local start = 1
    while true do
        local i, j = string.find(tb, SEPARATOR, start, true)
        if i == nil then
            table.insert(parts, string.sub(tb, start))
            break
        end
        table.insert(parts, string.sub(tb, start, i - 1))
        start = j + 1
    end
    record["traceback"] = table.concat(parts, "\n")
    return 2, timestamp, record
end
