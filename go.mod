module github.com/openbyok/byok

go 1.26
