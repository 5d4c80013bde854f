// RFC 7252 section 12.3: the CoAP Content-Formats registry (with the common later entries).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace coap {

enum class content_format : std::uint16_t {
  text_plain = 0,
  cose_encrypt0 = 16,
  cose_mac0 = 17,
  cose_sign1 = 18,
  link_format = 40,
  xml = 41,
  octet_stream = 42,
  exi = 47,
  json = 50,
  json_patch = 51,
  merge_patch = 52,
  cbor = 60,
  cwt = 61,
  multipart_core = 62,
  cbor_seq = 63,
  cose_encrypt = 96,
  cose_mac = 97,
  cose_sign = 98,
  cose_key = 101,
  cose_key_set = 102,
  senml_json = 110,
  sensml_json = 111,
  senml_cbor = 112,
  sensml_cbor = 113,
  senml_exi = 114,
  sensml_exi = 115,
  coap_group_json = 256,
  pkcs7_server_generated_key = 280,
  pkcs7_certs_only = 281,
  pkcs8 = 284,
  csrattrs = 285,
  pkcs10 = 286,
  pkix_cert = 287,
  senml_xml = 310,
  sensml_xml = 311,
  senml_etch_json = 320,
  senml_etch_cbor = 322,
  td_json = 432,
  yang_data_cbor = 140,
  oscore = 10001,
  json_deflate = 11050,
  cbor_deflate = 11060,
};

// The media type, like "application/link-format"; empty when unregistered here.
constexpr std::string_view media_type(content_format f) noexcept {
  switch (f) {
    case content_format::text_plain: return "text/plain;charset=utf-8";
    case content_format::cose_encrypt0: return "application/cose;cose-type=\"cose-encrypt0\"";
    case content_format::cose_mac0: return "application/cose;cose-type=\"cose-mac0\"";
    case content_format::cose_sign1: return "application/cose;cose-type=\"cose-sign1\"";
    case content_format::link_format: return "application/link-format";
    case content_format::xml: return "application/xml";
    case content_format::octet_stream: return "application/octet-stream";
    case content_format::exi: return "application/exi";
    case content_format::json: return "application/json";
    case content_format::json_patch: return "application/json-patch+json";
    case content_format::merge_patch: return "application/merge-patch+json";
    case content_format::cbor: return "application/cbor";
    case content_format::cwt: return "application/cwt";
    case content_format::multipart_core: return "application/multipart-core";
    case content_format::cbor_seq: return "application/cbor-seq";
    case content_format::cose_encrypt: return "application/cose;cose-type=\"cose-encrypt\"";
    case content_format::cose_mac: return "application/cose;cose-type=\"cose-mac\"";
    case content_format::cose_sign: return "application/cose;cose-type=\"cose-sign\"";
    case content_format::cose_key: return "application/cose-key";
    case content_format::cose_key_set: return "application/cose-key-set";
    case content_format::senml_json: return "application/senml+json";
    case content_format::sensml_json: return "application/sensml+json";
    case content_format::senml_cbor: return "application/senml+cbor";
    case content_format::sensml_cbor: return "application/sensml+cbor";
    case content_format::senml_exi: return "application/senml-exi";
    case content_format::sensml_exi: return "application/sensml-exi";
    case content_format::coap_group_json: return "application/coap-group+json";
    case content_format::pkcs7_server_generated_key:
      return "application/pkcs7-mime;smime-type=server-generated-key";
    case content_format::pkcs7_certs_only: return "application/pkcs7-mime;smime-type=certs-only";
    case content_format::pkcs8: return "application/pkcs8";
    case content_format::csrattrs: return "application/csrattrs";
    case content_format::pkcs10: return "application/pkcs10";
    case content_format::pkix_cert: return "application/pkix-cert";
    case content_format::senml_xml: return "application/senml+xml";
    case content_format::sensml_xml: return "application/sensml+xml";
    case content_format::senml_etch_json: return "application/senml-etch+json";
    case content_format::senml_etch_cbor: return "application/senml-etch+cbor";
    case content_format::td_json: return "application/td+json";
    case content_format::yang_data_cbor: return "application/yang-data+cbor";
    case content_format::oscore: return "application/oscore";
    case content_format::json_deflate: return "application/json;content-coding=deflate";
    case content_format::cbor_deflate: return "application/cbor;content-coding=deflate";
  }
  return {};
}

// The short names libcoap's tools accept for -t (text, link, xml, binary, json, cbor ...).
constexpr std::optional<content_format> content_format_from_name(std::string_view s) noexcept {
  struct entry { std::string_view name; content_format format; };
  constexpr entry table[] = {
      {"text", content_format::text_plain},  {"text/plain", content_format::text_plain},
      {"link", content_format::link_format}, {"link-format", content_format::link_format},
      {"xml", content_format::xml},          {"binary", content_format::octet_stream},
      {"octet-stream", content_format::octet_stream}, {"exi", content_format::exi},
      {"json", content_format::json},        {"cbor", content_format::cbor},
      {"senml+json", content_format::senml_json}, {"senml+cbor", content_format::senml_cbor},
  };
  for (const auto& e : table)
    if (e.name == s) return e.format;
  return std::nullopt;
}

}  // namespace coap
