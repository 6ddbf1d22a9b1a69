module github.com/athenaserving/asf/services/loader

go 1.26

require github.com/athenaserving/asf/libs v0.0.0

replace github.com/athenaserving/asf/libs => ../../libs
