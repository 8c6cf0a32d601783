// Handshake: the worker's first line, and the host's rules for it (docs/protocol.md, 2).
#include "polyglot/handshake.hpp"

#include <algorithm>

#include "codec_impl.hpp"

namespace polyglot {

namespace {

HandshakeError malformed(const std::string& why) {
    return HandshakeError("malformed handshake: " + why);
}

std::string shown(const Value& v) {
    try {
        return encode_json(v);
    } catch (const EncodeError&) {
        return type_name(v);
    }
}

}  // namespace

Handshake Handshake::parse(std::string_view line) {
    Value v;
    try {
        v = decode_json(line);
    } catch (const DecodeError& e) {
        throw malformed(std::string("not valid JSON: ") + e.what());
    }
    if (!v.is_object()) throw malformed("a handshake is a JSON object");
    Handshake h;
    const auto protocol = v.find("polyglot");
    if (protocol == v.end()) {
        throw malformed("no `polyglot` field (the protocol version the worker speaks)");
    }
    if (!protocol->is_number_unsigned()) {
        throw malformed("`polyglot` must be a protocol version number, not " + shown(*protocol));
    }
    h.protocol = protocol->get<std::uint64_t>();
    if (h.protocol != kProtocolVersion) {
        throw HandshakeError("the worker speaks protocol version " + std::to_string(h.protocol) +
                             ", this host speaks protocol version " +
                             std::to_string(kProtocolVersion));
    }
    const auto string = [&v](const char* key) {
        const auto it = v.find(key);
        if (it == v.end()) throw malformed(std::string("no `") + key + "` field");
        if (!it->is_string()) {
            throw malformed(std::string("`") + key + "` must be a string, not " + shown(*it));
        }
        return it->get<std::string>();
    };
    h.module = string("module");
    h.version = string("version");
    if (const auto it = v.find("language"); it != v.end() && it->is_string()) {
        h.language = it->get<std::string>();
    }
    if (const auto it = v.find("codec"); it != v.end()) {
        if (!it->is_string()) throw malformed("`codec` must be a string, not " + shown(*it));
        const auto codec = parse_codec(it->get_ref<const std::string&>());
        if (!codec) throw malformed("`codec` must be \"json\" or \"msgpack\", not " + shown(*it));
        h.codec = *codec;
    }
    const auto methods = v.find("methods");
    if (methods == v.end()) throw malformed("no `methods` list (the methods it serves)");
    if (!methods->is_array()) throw malformed("`methods` must be an array, not " + shown(*methods));
    for (const auto& m : *methods) {
        if (!m.is_string()) throw malformed("`methods` must list strings, not " + shown(m));
        h.methods.push_back(m.get<std::string>());
    }
    if (const auto it = v.find("maxConcurrency"); it != v.end()) {
        if (!it->is_number_unsigned() || it->get<std::uint64_t>() < 1) {
            throw malformed("`maxConcurrency` must be an integer of at least 1, not " + shown(*it));
        }
        h.max_concurrency = it->get<std::uint64_t>();
    }
    if (const auto it = v.find("pid"); it != v.end() && it->is_number_unsigned()) {
        h.pid = it->get<std::uint64_t>();
    }
    if (const auto it = v.find("transport"); it != v.end() && it->is_string()) {
        h.transport = it->get<std::string>();
    }
    if (const auto it = v.find("address"); it != v.end() && it->is_string()) {
        h.address = it->get<std::string>();
    }
    return h;
}

void Handshake::check(const ExpectedWorker& expected) const {
    if (module != expected.module) {
        throw HandshakeError("the worker serves module " + shown(Value(module)) +
                             " but the manifest names module " + shown(Value(expected.module)));
    }
    if (codec != expected.codec) {
        throw HandshakeError(std::string("the worker speaks codec ") + to_string(codec) +
                             " but the manifest's codec is " + to_string(expected.codec));
    }
    std::vector<std::string> missing;
    for (const auto& c : expected.capabilities) {
        if (std::find(methods.begin(), methods.end(), c) == methods.end()) missing.push_back(c);
    }
    if (!missing.empty()) {
        std::string list;
        for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
        throw HandshakeError(std::string("the worker does not serve ") +
                             (missing.size() == 1 ? "a method" : "methods") +
                             " listed in the manifest's capabilities: " + list);
    }
}

std::string Handshake::to_line() const {
    std::string out;
    const std::size_t n = 6 + (language ? 1 : 0) + (pid ? 1 : 0) + (transport ? 1 : 0) +
                          (address ? 1 : 0);
    detail::MapWriter w(Codec::json, out, n);
    w.key("polyglot").uint(protocol);
    w.key("module").string(module);
    w.key("version").string(version);
    if (language) w.key("language").string(*language);
    w.key("codec").string(to_string(codec));
    w.key("methods").value(Value(methods));
    w.key("maxConcurrency").uint(max_concurrency);
    if (pid) w.key("pid").uint(*pid);
    if (transport) w.key("transport").string(*transport);
    if (address) w.key("address").string(*address);
    w.end();
    out.push_back('\n');
    return out;
}

}  // namespace polyglot
