module qtx.dev/examples

go 1.19

require qtx.dev/qtx v0.0.0

replace qtx.dev/qtx => ../../bindings/go
