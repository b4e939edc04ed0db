# cmake -DINPUT=file -DOUTPUT=file.cc -DSYMBOL=name -P EmbedFile.cmake
# Writes a C++ source defining qtx::proto::descriptor_set() over INPUT's bytes.
file(READ ${INPUT} _hex HEX)
string(LENGTH "${_hex}" _len)
math(EXPR _n "${_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _bytes "${_hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" _bytes "${_bytes}")
file(WRITE ${OUTPUT}
"// Generated from ${INPUT}. Do not edit.\n#include \"qtx/proto/descriptor_set.h\"\n\nnamespace qtx::proto {\nnamespace {\nconst unsigned char ${SYMBOL}[${_n}] = {\n${_bytes}\n};\n}  // namespace\n\nstd::string_view descriptor_set() {\n  return std::string_view(reinterpret_cast<const char*>(${SYMBOL}), sizeof(${SYMBOL}));\n}\n\n}  // namespace qtx::proto\n")
