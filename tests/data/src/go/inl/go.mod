module fleetsym.test/inl

go 1.19
