module qtx.dev/qtx

go 1.19
