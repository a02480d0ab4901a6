# SPDX-License-Identifier: MIT
#
# Turns a list of numbered migration files (NNN_name.sql) into a C source
# that defines the migration set SET: an array of sql_migration and its
# length. Run by saga_embed_sql() in the top-level CMakeLists.txt.

string(REPLACE "|" ";" FILES "${FILES}")
set(body "/* Generated from sql/ by cmake/embed_sql.cmake. Do not edit. */\n")
string(APPEND body "#include \"sql_migrate.h\"\n\n")
set(table "")
set(count 0)
foreach(f IN LISTS FILES)
	get_filename_component(name "${f}" NAME)
	if(NOT name MATCHES "^([0-9]+)_[A-Za-z0-9_]+\\.sql$")
		message(FATAL_ERROR "${f}: migration files are named NNN_name.sql")
	endif()
	math(EXPR version "${CMAKE_MATCH_1}")
	file(READ "${f}" hex HEX)
	string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
	string(APPEND body "static const char m${count}[] = {${hex}0x00};\n")
	string(APPEND table "\t{${version}, \"${name}\", m${count}},\n")
	math(EXPR count "${count} + 1")
endforeach()
string(APPEND body "\nconst sql_migration ${SET}_migrations[] = {\n${table}")
string(APPEND body "\t{0, NULL, NULL},\n};\n")
string(APPEND body "const size_t ${SET}_migrations_count = ${count};\n")
file(WRITE "${OUT}.tmp" "${body}")
file(RENAME "${OUT}.tmp" "${OUT}")
