fn main() {
    println!("tasq");
}
