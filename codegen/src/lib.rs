pub fn generate(){}
