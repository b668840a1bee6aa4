// PyTorch zip checkpoint reader: zip central directory, a minimal pickle VM, strided storage copies.
#include "engine/io/torch_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <fstream>
#include <map>
#include <memory>
#include <variant>

#include "engine/error.h"

namespace engine::io {

namespace {

const char* kOp = "load_torch_checkpoint";

// ------------------------------------------------------------------------------------------------------ zip
struct ZipMember {
  uint64_t data_offset = 0;
  uint64_t size = 0;
};

uint32_t rd32(const std::string& b, size_t p) {
  uint32_t v;
  std::memcpy(&v, b.data() + p, 4);
  return v;
}
uint16_t rd16(const std::string& b, size_t p) {
  uint16_t v;
  std::memcpy(&v, b.data() + p, 2);
  return v;
}

std::map<std::string, ZipMember> read_zip(const std::string& bytes, const std::string& path) {
  if (bytes.size() < 22) ENGINE_FAIL(kOp, "{}: too small to be a zip archive", path);
  size_t eocd = std::string::npos;
  const size_t lo = bytes.size() > 65557 ? bytes.size() - 65557 : 0;
  for (size_t p = bytes.size() - 22 + 1; p-- > lo;)
    if (rd32(bytes, p) == 0x06054b50) {
      eocd = p;
      break;
    }
  if (eocd == std::string::npos)
    ENGINE_FAIL(kOp, "{}: not a zip archive (no end-of-central-directory record); only the zip format of "
                "torch.save (PyTorch >= 1.6) is supported", path);
  const uint16_t count = rd16(bytes, eocd + 10);
  const uint32_t cd_size = rd32(bytes, eocd + 12), cd_off = rd32(bytes, eocd + 16);
  if (cd_off == 0xFFFFFFFFu || count == 0xFFFF) ENGINE_FAIL(kOp, "{}: zip64 archives are not supported", path);
  if (static_cast<uint64_t>(cd_off) + cd_size > bytes.size()) ENGINE_FAIL(kOp, "{}: truncated central directory", path);
  std::map<std::string, ZipMember> members;
  size_t p = cd_off;
  for (uint16_t i = 0; i < count; ++i) {
    if (p + 46 > bytes.size() || rd32(bytes, p) != 0x02014b50)
      ENGINE_FAIL(kOp, "{}: corrupt central directory entry {}", path, i);
    const uint16_t method = rd16(bytes, p + 10);
    const uint32_t csize = rd32(bytes, p + 20), usize = rd32(bytes, p + 24);
    const uint16_t nlen = rd16(bytes, p + 28), xlen = rd16(bytes, p + 30), clen = rd16(bytes, p + 32);
    const uint32_t local = rd32(bytes, p + 42);
    std::string name = bytes.substr(p + 46, nlen);
    if (method != 0) ENGINE_FAIL(kOp, "{}: member '{}' is compressed (method {}); only stored members are supported",
                                 path, name, method);
    if (csize != usize || csize == 0xFFFFFFFFu) ENGINE_FAIL(kOp, "{}: member '{}' has unsupported sizes", path, name);
    if (static_cast<uint64_t>(local) + 30 > bytes.size() || rd32(bytes, local) != 0x04034b50)
      ENGINE_FAIL(kOp, "{}: bad local header for '{}'", path, name);
    const uint64_t data = static_cast<uint64_t>(local) + 30 + rd16(bytes, local + 26) + rd16(bytes, local + 28);
    if (data + csize > bytes.size()) ENGINE_FAIL(kOp, "{}: member '{}' is truncated", path, name);
    members[name] = {data, csize};
    p += 46 + nlen + xlen + clen;
  }
  return members;
}

// ------------------------------------------------------------------------------------------------------ pickle
struct Obj;
using ObjP = std::shared_ptr<Obj>;
struct Obj {
  enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, TensorRec, Mark } kind = None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s, s2;  // Str; Global module/name; Storage key (s) and type name (s2)
  std::vector<ObjP> items;                          // Tuple / List
  std::vector<std::pair<ObjP, ObjP>> dict;          // Dict (insertion order)
  TorchTensorInfo tensor;                           // TensorRec
};

ObjP make(Obj::Kind k) {
  auto o = std::make_shared<Obj>();
  o->kind = k;
  return o;
}

DType storage_dtype(const std::string& type, const std::string& path) {
  if (type == "FloatStorage") return DType::F32;
  if (type == "DoubleStorage") return DType::F64;
  if (type == "LongStorage") return DType::I64;
  if (type == "IntStorage") return DType::I32;
  if (type == "ByteStorage") return DType::U8;
  if (type == "BoolStorage") return DType::Bool;
  ENGINE_FAIL(kOp, "{}: unsupported storage type torch.{}", path, type);
}

std::vector<int64_t> int_tuple(const ObjP& o, const std::string& what, const std::string& path) {
  if (!o || (o->kind != Obj::Tuple && o->kind != Obj::List)) ENGINE_FAIL(kOp, "{}: {} is not a tuple", path, what);
  std::vector<int64_t> v;
  for (const ObjP& x : o->items) {
    if (x->kind != Obj::Int) ENGINE_FAIL(kOp, "{}: {} holds a non-integer", path, what);
    v.push_back(x->i);
  }
  return v;
}

ObjP run_pickle(const std::string& p, const std::string& path) {
  std::vector<ObjP> stack;
  std::vector<size_t> marks;
  std::map<int64_t, ObjP> memo;
  size_t pc = 0;
  auto need = [&](size_t n) {
    if (pc + n > p.size()) ENGINE_FAIL(kOp, "{}: data.pkl is truncated", path);
  };
  auto pop = [&]() {
    if (stack.empty()) ENGINE_FAIL(kOp, "{}: pickle stack underflow", path);
    ObjP o = stack.back();
    stack.pop_back();
    return o;
  };
  auto pop_mark = [&]() {
    if (marks.empty()) ENGINE_FAIL(kOp, "{}: pickle MARK missing", path);
    size_t m = marks.back();
    marks.pop_back();
    std::vector<ObjP> items(stack.begin() + static_cast<std::ptrdiff_t>(m), stack.end());
    stack.resize(m);
    return items;
  };
  auto read_uint = [&](size_t n) {
    need(n);
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[pc + k])) << (8 * k);
    pc += n;
    return v;
  };
  auto read_line = [&]() {
    size_t e = p.find('\n', pc);
    if (e == std::string::npos) ENGINE_FAIL(kOp, "{}: data.pkl is truncated", path);
    std::string s = p.substr(pc, e - pc);
    pc = e + 1;
    return s;
  };
  auto set_item = [&](const ObjP& d, const ObjP& k, const ObjP& v) {
    if (d->kind != Obj::Dict) ENGINE_FAIL(kOp, "{}: SETITEM on a non-dict", path);
    d->dict.emplace_back(k, v);
  };
  auto call = [&](const ObjP& fn, const ObjP& args) -> ObjP {
    if (fn->kind != Obj::Global) ENGINE_FAIL(kOp, "{}: REDUCE on a non-global", path);
    const std::string full = fn->s + "." + fn->s2;
    if (full == "collections.OrderedDict" || full == "builtins.dict") return make(Obj::Dict);
    if (full == "torch._utils._rebuild_tensor_v2" || full == "torch._utils._rebuild_tensor") {
      if (args->items.size() < 4) ENGINE_FAIL(kOp, "{}: _rebuild_tensor_v2 with {} arguments", path, args->items.size());
      const ObjP& st = args->items[0];
      if (st->kind != Obj::Storage) ENGINE_FAIL(kOp, "{}: tensor without a storage", path);
      auto t = make(Obj::TensorRec);
      t->tensor.storage_key = st->s;
      t->tensor.dtype = storage_dtype(st->s2, path);
      if (args->items[1]->kind != Obj::Int) ENGINE_FAIL(kOp, "{}: bad storage offset", path);
      t->tensor.storage_offset = args->items[1]->i;
      t->tensor.shape = int_tuple(args->items[2], "tensor size", path);
      t->tensor.stride = int_tuple(args->items[3], "tensor stride", path);
      if (t->tensor.shape.size() != t->tensor.stride.size()) ENGINE_FAIL(kOp, "{}: size and stride ranks differ", path);
      return t;
    }
    if (full == "torch._utils._rebuild_parameter" || full == "torch._utils._rebuild_parameter_with_state") {
      if (args->items.empty()) ENGINE_FAIL(kOp, "{}: _rebuild_parameter without data", path);
      return args->items[0];
    }
    ENGINE_FAIL(kOp, "{}: unsupported pickle global {}", path, full);
  };
  while (true) {
    need(1);
    const uint8_t op = static_cast<uint8_t>(p[pc++]);
    switch (op) {
      case 0x80: read_uint(1); break;                   // PROTO
      case 0x95: read_uint(8); break;                   // FRAME
      case '.': return stack.empty() ? make(Obj::None) : stack.back();  // STOP
      case '(': marks.push_back(stack.size()); break;   // MARK
      case 'c': {                                       // GLOBAL
        auto g = make(Obj::Global);
        g->s = read_line();
        g->s2 = read_line();
        stack.push_back(g);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        ObjP name = pop(), mod = pop();
        auto g = make(Obj::Global);
        g->s = mod->s;
        g->s2 = name->s;
        stack.push_back(g);
        break;
      }
      case 'q': memo[static_cast<int64_t>(read_uint(1))] = stack.back(); break;  // BINPUT
      case 'r': memo[static_cast<int64_t>(read_uint(4))] = stack.back(); break;  // LONG_BINPUT
      case 0x94: memo[static_cast<int64_t>(memo.size())] = stack.back(); break;  // MEMOIZE
      case 'h':
      case 'j': {  // BINGET / LONG_BINGET
        const int64_t key = static_cast<int64_t>(read_uint(op == 'h' ? 1 : 4));
        auto it = memo.find(key);
        if (it == memo.end()) ENGINE_FAIL(kOp, "{}: pickle memo key {} missing", path, key);
        stack.push_back(it->second);
        break;
      }
      case ')': stack.push_back(make(Obj::Tuple)); break;  // EMPTY_TUPLE
      case 't': {                                          // TUPLE
        auto t = make(Obj::Tuple);
        t->items = pop_mark();
        stack.push_back(t);
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        const size_t n = op - 0x84;
        auto t = make(Obj::Tuple);
        t->items.resize(n);
        for (size_t k = n; k-- > 0;) t->items[k] = pop();
        stack.push_back(t);
        break;
      }
      case ']': stack.push_back(make(Obj::List)); break;  // EMPTY_LIST
      case 'a': {                                         // APPEND
        ObjP v = pop();
        stack.back()->items.push_back(v);
        break;
      }
      case 'e': {  // APPENDS
        auto items = pop_mark();
        for (auto& v : items) stack.back()->items.push_back(v);
        break;
      }
      case '}': stack.push_back(make(Obj::Dict)); break;  // EMPTY_DICT
      case 's': {                                         // SETITEM
        ObjP v = pop(), k = pop();
        set_item(stack.back(), k, v);
        break;
      }
      case 'u': {  // SETITEMS
        auto items = pop_mark();
        if (items.size() % 2) ENGINE_FAIL(kOp, "{}: odd SETITEMS", path);
        for (size_t k = 0; k < items.size(); k += 2) set_item(stack.back(), items[k], items[k + 1]);
        break;
      }
      case 'R': {  // REDUCE
        ObjP args = pop(), fn = pop();
        stack.push_back(call(fn, args));
        break;
      }
      case 0x81: {  // NEWOBJ
        ObjP args = pop(), cls = pop();
        stack.push_back(call(cls, args));
        break;
      }
      case 'b': pop(); break;  // BUILD: state ignored (OrderedDict _metadata, tensor state)
      case 'X': {              // BINUNICODE
        const size_t n = read_uint(4);
        need(n);
        auto s = make(Obj::Str);
        s->s = p.substr(pc, n);
        pc += n;
        stack.push_back(s);
        break;
      }
      case 0x8c: {  // SHORT_BINUNICODE
        const size_t n = read_uint(1);
        need(n);
        auto s = make(Obj::Str);
        s->s = p.substr(pc, n);
        pc += n;
        stack.push_back(s);
        break;
      }
      case 'K':
      case 'M':
      case 'J': {  // BININT1 / BININT2 / BININT
        auto o = make(Obj::Int);
        if (op == 'J') o->i = static_cast<int32_t>(read_uint(4));
        else o->i = static_cast<int64_t>(read_uint(op == 'K' ? 1 : 2));
        stack.push_back(o);
        break;
      }
      case 0x8a: {  // LONG1
        const size_t n = read_uint(1);
        if (n > 8) ENGINE_FAIL(kOp, "{}: integer too large", path);
        uint64_t v = read_uint(n);
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);
        auto o = make(Obj::Int);
        o->i = static_cast<int64_t>(v);
        stack.push_back(o);
        break;
      }
      case 'G': {  // BINFLOAT (big endian)
        uint64_t v = 0;
        need(8);
        for (int k = 0; k < 8; ++k) v = (v << 8) | static_cast<uint8_t>(p[pc + k]);
        pc += 8;
        auto o = make(Obj::Float);
        std::memcpy(&o->f, &v, 8);
        stack.push_back(o);
        break;
      }
      case 0x88:
      case 0x89: {  // NEWTRUE / NEWFALSE
        auto o = make(Obj::Bool);
        o->b = op == 0x88;
        stack.push_back(o);
        break;
      }
      case 'N': stack.push_back(make(Obj::None)); break;
      case 'Q': {  // BINPERSID
        ObjP pid = pop();
        if (pid->kind != Obj::Tuple || pid->items.size() < 3 || pid->items[0]->kind != Obj::Str ||
            pid->items[0]->s != "storage" || pid->items[1]->kind != Obj::Global)
          ENGINE_FAIL(kOp, "{}: unsupported persistent id", path);
        auto st = make(Obj::Storage);
        st->s2 = pid->items[1]->s2;
        const ObjP& key = pid->items[2];
        st->s = key->kind == Obj::Str ? key->s : std::to_string(key->i);
        stack.push_back(st);
        break;
      }
      default: ENGINE_FAIL(kOp, "{}: unsupported pickle opcode 0x{:02x} at byte {}", path, op, pc - 1);
    }
  }
}

void flatten(const ObjP& d, const std::string& prefix, std::vector<TorchTensorInfo>& out, const std::string& path) {
  for (const auto& [k, v] : d->dict) {
    if (k->kind != Obj::Str) ENGINE_FAIL(kOp, "{}: state-dict key is not a string", path);
    const std::string name = prefix.empty() ? k->s : prefix + "." + k->s;
    if (v->kind == Obj::TensorRec) {
      TorchTensorInfo t = v->tensor;
      t.name = name;
      out.push_back(t);
    } else if (v->kind == Obj::Dict) {
      flatten(v, name, out, path);
    }  // other values (ints, strings: epochs, configs) are skipped
  }
}

struct Archive {
  std::string bytes;
  std::map<std::string, ZipMember> members;
  std::string prefix;
  std::vector<TorchTensorInfo> infos;
};

Archive open_archive(const std::string& path) {
  Archive a;
  std::ifstream f(path, std::ios::binary);
  if (!f) ENGINE_FAIL(kOp, "{}: cannot open file", path);
  a.bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  a.members = read_zip(a.bytes, path);
  std::string pkl;
  for (const auto& [name, m] : a.members) {
    const std::string suffix = "data.pkl";
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        std::count(name.begin(), name.end(), '/') == 1) {
      pkl = name;
      a.prefix = name.substr(0, name.size() - suffix.size());
    }
  }
  if (pkl.empty()) ENGINE_FAIL(kOp, "{}: no '<prefix>/data.pkl' member: not a torch.save zip checkpoint", path);
  auto bo = a.members.find(a.prefix + "byteorder");
  if (bo != a.members.end()) {
    std::string order = a.bytes.substr(bo->second.data_offset, bo->second.size);
    if (order != "little") ENGINE_FAIL(kOp, "{}: byteorder '{}' is not supported", path, order);
  }
  const ZipMember& m = a.members.at(pkl);
  ObjP root = run_pickle(a.bytes.substr(m.data_offset, m.size), path);
  if (root->kind != Obj::Dict) ENGINE_FAIL(kOp, "{}: data.pkl does not hold a dict (state dict)", path);
  flatten(root, "", a.infos, path);
  return a;
}

}  // namespace

std::vector<TorchTensorInfo> inspect_torch_checkpoint(const std::string& path) { return open_archive(path).infos; }

std::vector<std::pair<std::string, Tensor>> load_torch_checkpoint(const std::string& path) {
  Archive a = open_archive(path);
  std::vector<std::pair<std::string, Tensor>> out;
  for (const TorchTensorInfo& t : a.infos) {
    auto it = a.members.find(a.prefix + "data/" + t.storage_key);
    if (it == a.members.end()) ENGINE_FAIL(kOp, "{}: storage '{}' of '{}' is missing", path, t.storage_key, t.name);
    const int64_t es = dtype_size(t.dtype);
    const int64_t storage_numel = static_cast<int64_t>(it->second.size) / es;
    int64_t numel = 1, max_off = t.storage_offset;
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (t.shape[d] < 0 || t.stride[d] < 0) ENGINE_FAIL(kOp, "{}: '{}' has a negative size or stride", path, t.name);
      numel *= t.shape[d];
      max_off += (t.shape[d] - 1) * t.stride[d];
    }
    if (numel > 0 && (t.storage_offset < 0 || max_off >= storage_numel))
      ENGINE_FAIL(kOp, "{}: '{}' (offset {}, shape/stride) reaches past its storage of {} elements", path, t.name,
                  t.storage_offset, storage_numel);
    Tensor dst = empty(t.shape, TensorOptions(t.dtype));
    const char* src = a.bytes.data() + it->second.data_offset;
    char* d = static_cast<char*>(dst.raw_data());
    std::vector<int64_t> idx(t.shape.size(), 0);
    for (int64_t e = 0; e < numel; ++e) {
      int64_t off = t.storage_offset;
      for (size_t k = 0; k < idx.size(); ++k) off += idx[k] * t.stride[k];
      std::memcpy(d + e * es, src + off * es, static_cast<size_t>(es));
      for (size_t k = idx.size(); k-- > 0;) {
        if (++idx[k] < t.shape[k]) break;
        idx[k] = 0;
      }
    }
    out.emplace_back(t.name, dst);
  }
  return out;
}

}  // namespace engine::io
