//! The `pygate._core` extension module, typed in `pygate/_core.pyi`. Nothing here runs per
//! request except `PluginCall`, which exists only for routes with Python plugins; every call
//! that blocks releases the GIL.

mod bench;
mod gateway;
mod hot_paths;
mod plugin_call;
mod tokens;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(gateway::version, m)?)?;
    m.add_function(wrap_pyfunction!(gateway::check_config, m)?)?;
    m.add_function(wrap_pyfunction!(gateway::requests_row_binary_to_native, m)?)?;
    m.add_function(wrap_pyfunction!(hot_paths::requests_columns, m)?)?;
    m.add_function(wrap_pyfunction!(tokens::token_encoding, m)?)?;
    m.add_function(wrap_pyfunction!(tokens::count_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(tokens::count_chat_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(tokens::count_completion_tokens, m)?)?;
    m.add_class::<gateway::Gateway>()?;
    m.add_class::<bench::Bench>()?;
    m.add_class::<hot_paths::HotPaths>()?;
    m.add_class::<plugin_call::PyPluginCall>()?;
    Ok(())
}
